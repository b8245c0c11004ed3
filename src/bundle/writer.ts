/**
 * Writes a bundle (see layout.ts) as a deterministic tar of the entries contract.ts makes (sorted by name, with
 * their modes): regular files only, uid/gid 0, mtime SOURCE_DATE_EPOCH or 0, plain ustar headers (see
 * tar-header.ts; every name is shorter than 100 bytes), ending with exactly 1024 zero bytes.
 *
 * The tar goes to `<output>.partial`; only a complete, flushed file is renamed to `<output>`, then `<output>.sha256`
 * and `<bundle>.install.sh` are written beside it. The file is filled by tar-fill.ts: each blob at its final offset
 * while it still downloads, the SHA-256 of the whole file taken in order alongside.
 *
 * With `partSize` (create --split) the same bytes go to consecutive parts `<output>.001`, … instead (part-files.ts:
 * each a `.partial` until all are complete), and `<bundle>.parts.sha256` is written beside them, last; `<output>.sha256`
 * still names the whole bundle (`<output>`, as `cat` of the parts gives it).
 */
import {readFileSync} from 'node:fs'
import {open, rename, statfs, unlink, writeFile, type FileHandle} from 'node:fs/promises'
import {dirname} from 'node:path'
import {KubeferryError} from '../oci/errors.js'
import {sideChecksum} from './checksums.js'
import {PartFiles, partsChecksums, removeStaleParts} from './part-files.js'
import {partCount, partsChecksumPath} from './parts-naming.js'
import {bundleEntries, checksumFileFor, installScriptPathFor, type BundleEntry} from './contract.js'
import {BUNDLE_SCHEMA_VERSION, END_OF_ARCHIVE_BYTES, INSTALL_SCRIPT_FILE, TAR_BLOCK, type BundleDelta, type BundleMetadata} from './layout.js'
import type {BundlePlan, PlannedBlob} from './plan.js'
import {fillTar, keepsHolesIn, layoutOf, type FillOptions} from './tar-fill.js'
import {TarOut} from './tar-out.js'

export {installScriptPathFor} from './contract.js'

export type BundleRequest = BundleMetadata['request']

/** What to write (and how to fill it: see FillOptions). */
export interface WriteBundleOptions extends FillOptions {
  output: string
  plan: BundlePlan
  request: BundleRequest
  /** Seconds since the epoch for every entry's mtime and bundle.json `created` (SOURCE_DATE_EPOCH); default 0 and no `created`. */
  sourceDateEpoch?: number
  /** fsync the bundle before renaming it into place (default true). */
  fsync?: boolean
  /** The bundle's metadata and entries, if the caller made them already (`bundleContents`); else made here. */
  contents?: BundleContents
  /** Write the bundle as parts of this many bytes (create --split); one part when it fits in one. */
  partSize?: number
  /** Each step's end, for `--debug`'s timeline. */
  log?: (message: string) => void
}

/** What a bundle holds, made once per build: its metadata, its entries in tar order (contract.ts), its exact size. */
export interface BundleContents {
  metadata: BundleMetadata
  entries: BundleEntry<PlannedBlob>[]
  size: number
}

export interface WriteBundleResult {
  path: string
  sha256: string
  size: number
  checksumFile: string
  installScript: string
  metadata: BundleMetadata
  /** With `partSize`: the parts in order (no file is written at `path` then), and their checksum file. */
  parts?: BundlePart[]
  partsChecksumFile?: string
}

export interface BundlePart {
  path: string
  size: number
  sha256: string
}


export function toolVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {version?: string}
    return pkg.version ?? '0.0.0'
  } catch {
    return '0.0.0'
  }
}

/** SOURCE_DATE_EPOCH from the environment, if set and valid. */
export function sourceDateEpochFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env.SOURCE_DATE_EPOCH
  if (text === undefined || text === '') return undefined
  if (!/^[0-9]+$/.test(text)) throw new KubeferryError('INVALID_ARGUMENT', `SOURCE_DATE_EPOCH="${text}" is not a number of seconds`)
  return Number.parseInt(text, 10)
}

export function buildMetadata(plan: BundlePlan, request: BundleRequest, sourceDateEpoch?: number, delta?: BundleDelta): BundleMetadata {
  const relied = new Set((delta?.relies ?? []).map((b) => b.digest))
  const carried = plan.blobs.filter((b) => !relied.has(b.digest))
  return {
    schemaVersion: BUNDLE_SCHEMA_VERSION,
    tool: {name: 'kubeferry', version: toolVersion()},
    ...(sourceDateEpoch !== undefined ? {created: new Date(sourceDateEpoch * 1000).toISOString()} : {}),
    request,
    platforms: plan.platforms,
    dockerPlatform: plan.dockerPlatform,
    images: plan.images,
    blobs: {count: carried.length, totalSize: carried.reduce((n, b) => n + b.size, 0)},
    ...(plan.trustedRoot ? {trustedRoot: plan.trustedRoot} : {}),
    ...(delta ? {delta} : {}),
  }
}

const padded = (size: number): number => Math.ceil(size / TAR_BLOCK) * TAR_BLOCK

/** Exact byte size of the tar for these entries (ustar: one header block each, data padded, end marker). */
export function tarSize(entries: {size: number}[]): number {
  return entries.reduce((n, e) => n + TAR_BLOCK + padded(e.size), 0) + END_OF_ARCHIVE_BYTES
}

async function checkSpace(dir: string, needed: number): Promise<void> {
  let free: number
  try {
    const info = await statfs(dir)
    free = Number(info.bavail) * Number(info.bsize)
  } catch {
    return // unknown: let the write fail clearly if it must
  }
  if (free < needed) {
    const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`
    throw new KubeferryError('NO_SPACE', `not enough space in ${dir} for the bundle: ${mb(needed)} needed, ${mb(free)} free`, {hint: 'free some space or write the bundle elsewhere with --output'})
  }
}

async function writeAtomic(path: string, content: string | Buffer, mode: number): Promise<void> {
  const temp = `${path}.partial`
  try {
    await writeFile(temp, content, {mode})
    await rename(temp, path)
  } catch (error) {
    await unlink(temp).catch(() => undefined)
    throw error
  }
}

/** The metadata and entries of the bundle for `plan` (see BundleContents). */
export function bundleContents(plan: BundlePlan, request: BundleRequest, sourceDateEpoch?: number, delta?: BundleDelta): BundleContents {
  const metadata = buildMetadata(plan, request, sourceDateEpoch, delta)
  const entries = bundleEntries(metadata, plan.blobs, sourceDateEpoch ?? 0)
  return {metadata, entries, size: tarSize(entries)}
}

export async function writeBundle(options: WriteBundleOptions): Promise<WriteBundleResult> {
  const {output, plan} = options
  const mtime = options.sourceDateEpoch ?? 0
  const {metadata, entries, size: expectedSize} = options.contents ?? bundleContents(plan, options.request, options.sourceDateEpoch)
  await checkSpace(dirname(output), expectedSize + 64 * 1024)
  const segments = layoutOf(entries.map((e) => ({name: e.path, size: e.size, mode: e.mode, bytes: e.bytes, blob: e.blob})), mtime)

  const partial = `${output}.partial`
  const parts = options.partSize === undefined ? undefined : new PartFiles(output, options.partSize, partCount(expectedSize, options.partSize))
  let handle: FileHandle | undefined
  let out: TarOut | undefined
  let digests: string[] = [] // each part's sha256, with parts
  try {
    options.signal?.throwIfAborted()
    if (parts) {
      await parts.removeStalePartials()
      out = new TarOut(parts)
    } else {
      handle = await open(partial, 'w+', 0o644) // read as well: the hasher reads back what landed ahead of it
      out = new TarOut(handle)
    }
    const copiers = (await keepsHolesIn(dirname(output))) ? options.copiers : 1
    await fillTar(out, segments, {...options, copiers}, options.fsync !== false)
    options.log?.('every byte is in the tar and hashed')
    if (parts) {
      await parts.checkSizes(expectedSize)
      digests = await out.partDigests() // before any part takes its final name
      if (digests.length !== parts.count) throw new KubeferryError('INTERNAL', `${digests.length} part hashes for ${parts.count} parts`)
    } else {
      const {size} = await handle!.stat()
      if (size !== expectedSize) throw new KubeferryError('INTERNAL', `bundle size ${size} differs from the computed ${expectedSize}`)
    }
    if (options.fsync !== false) {
      await Promise.all(out.files().map((f) => f.sync()))
      options.log?.('flushed to disk')
    }
    if (parts) await parts.close()
    else {
      await handle!.close()
      handle = undefined
    }
    options.signal?.throwIfAborted() // interrupted during the fsync: still nothing under the final name
    if (parts) await parts.commit()
    else {
      await rename(partial, output)
      await removeStaleParts(output) // an earlier bundle written in parts to the same output
    }
  } catch (error) {
    await out?.flush().catch(() => undefined)
    await out?.stop().catch(() => undefined)
    await handle?.close().catch(() => undefined)
    if (parts) await parts.discard()
    else await unlink(partial).catch(() => undefined)
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new KubeferryError('NO_SPACE', `no space left writing ${output}`, {hint: 'free some space or write the bundle elsewhere with --output', cause: error})
    }
    if (code && !(error instanceof KubeferryError) && !(error instanceof Error && error.name === 'AbortError')) {
      throw new KubeferryError('IO', `cannot write ${output}: ${code}`, {hint: 'check the output path and its permissions', cause: error})
    }
    throw error
  }

  const sha256 = out.hash.digest('hex')
  const checksumFile = checksumFileFor(output)
  const installScript = installScriptPathFor(output)
  await writeAtomic(checksumFile, sideChecksum(sha256, output), 0o644)
  await writeAtomic(installScript, entries.find((e) => e.path === INSTALL_SCRIPT_FILE)!.bytes!, 0o755) // the one inside
  if (!parts) return {path: output, sha256, size: expectedSize, checksumFile, installScript, metadata}
  const partsChecksumFile = partsChecksumPath(output)
  await writeAtomic(partsChecksumFile, partsChecksums(output, digests), 0o644) // last: the parts are complete
  const partList = digests.map((hex, i) => ({path: parts.path(i), size: parts.sizeOf(i, expectedSize), sha256: hex}))
  return {path: output, sha256, size: expectedSize, checksumFile, installScript, metadata, parts: partList, partsChecksumFile}
}
