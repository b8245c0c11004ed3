/**
 * `kubeferry load`: the same job, order, checks and wording as install.sh, driven by the same import plan, made from
 * the bundle's images as the walker reads them through the bundle as a source (bundle/images.ts); the runtime's
 * adapter imports them.
 */
import {createReadStream, existsSync, statfsSync} from 'node:fs'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {machine, tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {assertPlatformHeld, EXIT, planImport, platformFromUname, sandboxImages, summaryLine, canonicalPlatform, type ImportPlan, type PlanImage, type RuntimeName} from '../bundle/import-plan.js'
import {checksumFileFor, reliedOn} from '../bundle/contract.js'
import type {BundleImage, BundleMetadata} from '../bundle/layout.js'
import {walkBundleImages} from '../bundle/images.js'
import {BundleReader} from '../bundle/reader.js'
import {BundleSource} from '../bundle/source.js'
import {verifyBundle} from '../bundle/verify.js'
import {PartedBytes} from '../bundle/parted-bytes.js'
import {assertPartsMatch, hashParts} from '../bundle/parts-check.js'
import {isPartedPath, partsCheckCommand} from '../bundle/parts.js'
import {parsePartPath} from '../bundle/parts-naming.js'
import {isKubeferryError, KubeferryError} from '../oci/errors.js'
import {digestHex, digestOfStream} from '../oci/digest.js'
import type {RuntimeAdapter} from './adapter.js'
import {ContainerdAdapter} from './containerd.js'
import {resolveRuntime, type RuntimeTarget} from './detect.js'
import {DockerAdapter} from './docker.js'
import {assertDeltaForNodes, assertRuntimeHoldsRelied} from './delta-check.js'
import {lastLine} from './exec.js'
import {ContainersStorageAdapter} from './podman.js'
import {preflight, warningLines, type PreflightWarning} from './preflight.js'

export interface LoadOptions {
  bundle: string
  runtime?: RuntimeName | 'crio'
  address?: string
  namespace?: string
  platform?: string
  /** The runtime's config file (sandbox image, containerd root). */
  config?: string
  dryRun?: boolean
  verifyOnly?: boolean
  env?: NodeJS.ProcessEnv
  /** Progress lines as install.sh prints them; `warn` lines go to stderr. */
  onLine?: (line: string, kind: 'info' | 'warn' | 'error') => void
}

export interface LoadResult {
  bundle: string
  platform: string
  runtime?: string
  verified?: string
  imported: string[]
  present: string[]
  missing: string[]
  pinned: string[]
  wouldImport: string[]
  warnings: PreflightWarning[]
  dryRun: boolean
  verifyOnly: boolean
  summary?: string
  exitCode: number
}

const SCRATCH_MIN = 262_144

function badBundle(message: string, hint = 'copy the bundle again from its source and compare its .sha256'): KubeferryError {
  return new KubeferryError('BUNDLE_INVALID', message, {hint, exitCode: EXIT.badBundle})
}

function freeBytes(dir: string): number | undefined {
  let probe = dir
  while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe)
  try {
    const s = statfsSync(probe)
    return Number(s.bavail) * Number(s.bsize)
  } catch {
    return undefined
  }
}

function needSpace(dir: string, bytes: number, what: string): void {
  const free = freeBytes(dir)
  if (free === undefined) return
  const freeKb = Math.floor(free / 1024)
  const needKb = Math.ceil(bytes / 1024)
  if (freeKb < needKb) {
    throw new KubeferryError('NO_SPACE', `not enough space for ${what} in ${dir}: ${freeKb} KiB free, at least ${needKb} KiB needed; nothing was imported`, {
      hint: 'free some space (or set TMPDIR to a directory with room)',
      exitCode: EXIT.noSpace,
    })
  }
}

export function adapterFor(target: RuntimeTarget, config?: string): RuntimeAdapter {
  switch (target.kind) {
    case 'docker':
      return new DockerAdapter(target)
    case 'podman':
    case 'cri-o':
      return new ContainersStorageAdapter(target)
    default:
      return new ContainerdAdapter(target, config)
  }
}

async function verify(reader: BundleReader, plan: ImportPlan): Promise<string> {
  const path = reader.path
  const parted = reader.index.bytes instanceof PartedBytes ? reader.index.bytes.parts : undefined
  const side = checksumFileFor(parted?.bundlePath ?? path)
  let verified: string | undefined
  // The whole bundle's sha256 as NAME.tar.sha256 states it (read once, for one file or for parts alike).
  const expected = existsSync(side) ? (await readFile(side, 'utf8')).trim().split(/\s+/)[0] : undefined
  if (parted && (parted.listed || expected !== undefined)) {
    // One pass over the parts: each against NAME.parts.sha256 (naming a damaged part), the whole against NAME.tar.sha256.
    const hashes = await hashParts(parted)
    try {
      assertPartsMatch(parted, hashes, '. Nothing was imported')
    } catch (error) {
      throw badBundle((error as Error).message, (error as KubeferryError).hint)
    }
    const checked = [parted.checksumFile]
    if (expected !== undefined) {
      if (hashes.whole !== expected) throw badBundle(`bundle ${path} (its ${parted.files.length} parts end to end) does not match ${side} (sha256 ${hashes.whole}, expected ${expected}): a part is damaged; copy the parts again (with their .parts.sha256 beside them the bad part is named). Nothing was imported`)
      checked.push(side)
    }
    verified = `checksum ok (${checked.filter(Boolean).join(', ')})`
  } else if (expected !== undefined) {
    const actual = digestHex((await digestOfStream(createReadStream(path))).digest)
    if (actual !== expected) throw badBundle(`bundle ${path} does not match ${side} (sha256 ${actual}, expected ${expected}): it is corrupt or incomplete; copy it again. Nothing was imported`)
    verified = `checksum ok (${side})`
  }
  const structure = await verifyBundle(path, {quick: true})
  if (!structure.ok) throw badBundle(`bundle ${path} is incomplete: ${structure.problems[0].message}; nothing was imported`)
  for (const blob of plan.blobs) {
    if (!reader.blobEntry(blob.digest)) throw badBundle(`bundle ${path} is incomplete: missing blob ${blob.digest}; nothing was imported`)
  }
  if (!verified) {
    for (const blob of plan.blobs) {
      try {
        await pipeline(await reader.openBlob(blob), async function* (source) {
          for await (const _ of source) {
            // drain: the reader's verifier fails the pipeline on a digest or size mismatch
          }
        })
      } catch (error) {
        // The reader's message names the blob and bundle again: keep only what it found.
        const found = (isKubeferryError(error) ? error.message : (error as Error).message).replace(`blob ${blob.digest} in ${path}: `, '')
        throw badBundle(`blob ${blob.digest} in ${path} is corrupt (${found}): copy the bundle again. Nothing was imported`)
      }
    }
    verified = `structure ok, ${plan.blobs.length} blobs of ${plan.platform} hashed (no ${side} beside the bundle)`
  }
  return verified
}

/**
 * The images as the manifests say (the walker, through the bundle as a source); bundle.json adds roles only. A
 * bundle the walk refuses is described by verify's first problem, as a failed verification is.
 */
async function walkedImages(reader: BundleReader, meta: BundleMetadata): Promise<BundleImage[]> {
  try {
    return (await walkBundleImages(new BundleSource(reader, reliedOn(meta)), meta)).map((w) => w.image)
  } catch (error) {
    const structure = await verifyBundle(reader.path, {quick: true, checkParts: true})
    const why = structure.ok ? (isKubeferryError(error) ? error.message : String(error)) : structure.problems[0].message
    throw badBundle(`bundle ${reader.path} is incomplete: ${why}; nothing was imported`, isPartedPath(reader.path) ? `find the damaged part with \`${partsCheckCommand({bundlePath: parsePartPath(reader.path)?.bundlePath ?? reader.path})}\` and copy it again` : undefined)
  }
}

export async function loadBundle(options: LoadOptions): Promise<LoadResult> {
  const say = (line: string): void => options.onLine?.(line, 'info')
  const env = options.env ?? process.env
  if (!existsSync(options.bundle) && !isPartedPath(options.bundle)) {
    throw new KubeferryError('BUNDLE_INVALID', `bundle ${options.bundle}: no such file or directory`, {hint: `check the path (ls -l ${dirname(options.bundle)})`, exitCode: EXIT.badBundle})
  }
  let reader: BundleReader
  try {
    reader = await BundleReader.open(options.bundle)
  } catch (error) {
    if (isKubeferryError(error) && error.code === 'BUNDLE_INVALID') throw badBundle(`${error.message}; nothing was imported`, isPartedPath(options.bundle) ? error.hint : undefined)
    // Not readable as a file (a directory, no permission): a bad bundle too, with the reason's own hint.
    if (isKubeferryError(error)) throw new KubeferryError(error.code, error.message, {hint: error.hint, cause: error.cause, exitCode: EXIT.badBundle})
    throw error
  }
  const meta = await reader.metadata().catch((error: unknown) => {
    throw badBundle(`bundle ${options.bundle} has no readable kubeferry/bundle.json (${isKubeferryError(error) ? error.message : String(error)})`)
  })
  let platform = options.platform
  if (!platform) {
    platform = platformFromUname(machine())
    if (!platform) throw new KubeferryError('INVALID_ARGUMENT', `unknown machine type '${machine()}' from uname -m; pass --platform OS/ARCH`, {exitCode: EXIT.noPlatform})
  }
  platform = canonicalPlatform(platform)
  assertPlatformHeld(meta, platform)
  assertDeltaForNodes(meta)
  const plan = planImport({...meta, images: await walkedImages(reader, meta)}, platform)
  const result: LoadResult = {
    bundle: options.bundle,
    platform,
    imported: [],
    present: [],
    missing: [],
    pinned: [],
    wouldImport: [],
    warnings: [],
    dryRun: options.dryRun ?? false,
    verifyOnly: options.verifyOnly ?? false,
    exitCode: EXIT.ok,
  }
  const scratchParent = env.TMPDIR ?? tmpdir()
  let scratch: string
  try {
    scratch = await mkdtemp(join(scratchParent, 'kubeferry.'))
  } catch {
    throw new KubeferryError('NO_SPACE', `cannot create a scratch directory in ${scratchParent} (full or read-only?); set TMPDIR to a directory with free space`, {exitCode: EXIT.noSpace})
  }
  try {
    needSpace(scratch, SCRATCH_MIN, 'scratch files (TMPDIR)')
    say(`kubeferry: bundle ${options.bundle} (${meta.platforms.map(canonicalPlatform).join(' ')}); ${options.verifyOnly ? 'checking' : 'importing'} ${plan.images.length} images for ${platform}`)
    if (options.verifyOnly) {
      result.verified = await verify(reader, plan)
      say(`kubeferry: ${result.verified}`)
      say('kubeferry: bundle verified; nothing imported (--verify-only)')
      return result
    }
    const target = await resolveRuntime({runtime: options.runtime, address: options.address, namespace: options.namespace, env})
    result.runtime = target.kind
    say(`kubeferry: runtime ${target.description}`)
    await assertRuntimeHoldsRelied(target, plan, say) // a delta: before anything else touches the runtime
    result.warnings = await preflight({kind: target.kind, configFile: options.config, bundleNames: plan.images.map((i) => i.name), suggested: sandboxImages(meta)[0], env: target.env})
    for (const warning of result.warnings) for (const line of warningLines(warning)) options.onLine?.(`kubeferry: warning: ${line}`, 'warn')

    const adapter = adapterFor(target, options.config)
    const pins = adapter.pin !== undefined
    let state = await adapter.readState(plan)
    const todo: PlanImage[] = plan.images.filter((image) => !state.present(image))
    result.present = plan.images.filter((image) => state.present(image)).map((i) => i.name)
    const unpinned = pins ? plan.images.filter((i) => i.pin && !state.pinned(i.name)) : []
    const finish = (): LoadResult => {
      result.summary = summaryLine(platform, target.kind, {images: plan.images.length, imported: result.imported.length, present: result.present.length, missing: result.missing.length, pinned: result.pinned.length})
      say(result.summary)
      result.exitCode = result.missing.length === 0 ? EXIT.ok : EXIT.failed
      return result
    }
    if (todo.length === 0 && unpinned.length === 0) return finish()

    if (todo.length > 0) {
      result.verified = await verify(reader, plan)
      say(`kubeferry: ${result.verified}`)
      const space = await adapter.space(plan, reader.index.size)
      const scratchNeed = adapter.scratchBytes(plan)
      if (scratchNeed > 0) needSpace(scratch, scratchNeed, `an OCI layout of ${platform}'s blobs (TMPDIR)`)
      if (space) needSpace(space.dir, space.bytes, space.what)
    }
    if (options.dryRun) {
      result.wouldImport = todo.map((i) => i.name)
      for (const image of todo) say(`would import ${image.name}`)
      if (pins) for (const image of plan.images.filter((i) => i.pin)) say(`would pin ${image.name} (io.cri-containerd.pinned=pinned)`)
      say('kubeferry: dry run, nothing changed')
      return result
    }
    if (todo.length > 0) {
      const failure = await adapter.import({reader, plan, todo, scratch})
      if (failure !== undefined) {
        options.onLine?.(`kubeferry: error: ${target.kind} import failed:`, 'error')
        for (const line of failure.trim().split('\n').slice(-5)) options.onLine?.(line, 'error')
        say('kubeferry: checking what the runtime holds now')
      }
    }
    state = await adapter.readState(plan)
    const todoNames = new Set(todo.map((i) => i.name))
    for (const image of plan.images) {
      if (!state.present(image)) {
        result.missing.push(image.name)
        options.onLine?.(`kubeferry: error: MISSING ${image.name}: not in ${target.kind} with ${image.digest} after the import`, 'error')
        continue
      }
      if (todoNames.has(image.name)) {
        result.imported.push(image.name)
        say(`imported ${image.name} ${adapter.shownDigest(image)}`)
        const warning = await adapter.addDigestName?.(image)
        if (warning) options.onLine?.(`kubeferry: warning: ${warning}`, 'warn')
      }
      if (image.pin && adapter.pin && !state.pinned(image.name)) {
        try {
          await adapter.pin(image.name)
          result.pinned.push(image.name)
          say(`pinned ${image.name} (io.cri-containerd.pinned=pinned): kubelet image GC keeps it (containerd >= 1.7 honours the label)`)
        } catch (error) {
          result.missing.push(image.name)
          options.onLine?.(`kubeferry: error: ${isKubeferryError(error) ? error.message : lastLine(String(error))}`, 'error')
        }
      }
    }
    return finish()
  } finally {
    await rm(scratch, {recursive: true, force: true})
  }
}
