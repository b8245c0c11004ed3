/**
 * `create --with-tool`: kubeferry itself carried beside the bundle, so that `push`, `serve`, `load`, `verify` and
 * `config` run inside the gap where no Node.js is installed. For each architecture of the carried platforms it
 * writes the single file of that architecture (`npm run package`, scripts/package/) as NAME.kubeferry-linux-ARCH
 * beside NAME.tar, and adds its line to NAME.tar.sha256 after the bundle's own (install.sh and `load` read only the
 * first line; `sha256sum -c NAME.tar.sha256` checks them all).
 *
 * Where each file comes from, first found:
 * 1. the running single file, for its own architecture;
 * 2. `kubeferry-linux-ARCH` beside the running executable (the single files are shipped side by side);
 * 3. `dist/sea/kubeferry-linux-ARCH` of this checkout (after `npm run package`).
 * A file is used only if it is an ELF executable of that architecture.
 */
import {createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {open, readFile, rename, rm, chmod} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {fileURLToPath} from 'node:url'
import * as Flags from '@oclif/core/flags'
import {checksumFileFor} from '../bundle/contract.js'
import {KubeferryError} from '../oci/errors.js'
import {parsePlatform} from '../oci/platform.js'

export const withToolFlags = {
  'with-tool': Flags.boolean({
    description: 'Also write kubeferry itself, as one executable that needs no Node.js, for each carried platform\'s architecture beside the bundle (NAME.kubeferry-linux-amd64, …-arm64), listed in NAME.tar.sha256.',
    default: false,
  }),
}

/** Architectures a single file is built for, by the name platforms use (the OCI / Go name). */
const ELF_MACHINE: Record<string, number> = {amd64: 62, arm64: 183}
const NODE_ARCH: Record<string, string> = {x64: 'amd64', arm64: 'arm64'}

export interface ToolFile {
  arch: string
  path: string
  sha256: string
  size: number
  /** Where it was copied from. */
  source: string
}

/** The single-file architectures `platforms` need (linux only; "all" or an unknown list: none yet), and the rest. */
export function toolArches(platforms: string[]): {arches: string[]; without: string[]} {
  const arches = new Set<string>()
  const without = new Set<string>()
  for (const text of platforms) {
    if (text === 'all') continue
    const platform = parsePlatform(text)
    if (platform.os === 'linux' && ELF_MACHINE[platform.architecture] !== undefined) arches.add(platform.architecture)
    else without.add(text)
  }
  return {arches: [...arches].sort(), without: [...without].sort()}
}

/** True inside a single file. getBuiltinModule, not import(): a single file's script has no dynamic import. */
function isRunningSingleFile(): boolean {
  const sea = process.getBuiltinModule('node:sea') as {isSea?: () => boolean} | undefined
  return sea?.isSea?.() ?? false
}

async function elfMachineOf(path: string): Promise<number | undefined> {
  let file
  try {
    file = await open(path, 'r')
    const head = Buffer.alloc(20)
    const {bytesRead} = await file.read(head, 0, 20, 0)
    if (bytesRead < 20 || head.readUInt32BE(0) !== 0x7f454c46) return undefined
    return head.readUInt16LE(18)
  } catch {
    return undefined
  } finally {
    await file?.close()
  }
}

/** The places to look for the single file of `arch`, in order. */
async function candidates(arch: string): Promise<string[]> {
  const here = process.execPath
  const list: string[] = []
  const single = isRunningSingleFile()
  if (single && NODE_ARCH[process.arch] === arch) list.push(here)
  list.push(join(dirname(here), `kubeferry-linux-${arch}`))
  if (!single) list.push(fileURLToPath(new URL(`../../sea/kubeferry-linux-${arch}`, import.meta.url))) // dist/src/cli/ → dist/sea/
  return [...new Set(list)]
}

/**
 * The single file of each architecture: fails, naming what is missing and how to get it, unless all are there.
 * `state`, when given, ends the hint: what the failure left behind.
 */
export async function findTools(arches: string[], state?: string): Promise<Map<string, string>> {
  const found = new Map<string, string>()
  const missing: string[] = []
  for (const arch of arches) {
    let hit: string | undefined
    for (const path of await candidates(arch)) {
      if ((await elfMachineOf(path)) === ELF_MACHINE[arch]) {
        hit = path
        break
      }
    }
    if (hit) found.set(arch, hit)
    else missing.push(arch)
  }
  if (missing.length > 0) {
    const looked = (await Promise.all(missing.map(candidates))).flat()
    throw new KubeferryError('NOT_FOUND', `--with-tool: no kubeferry single file for linux/${missing.join(', linux/')} (looked for ${looked.join(', ')})`, {
      hint: `put kubeferry-linux-${missing[0]} (from the release, or \`npm run package\` in a checkout, which writes dist/sea/) beside the kubeferry you run, or leave out --with-tool${state ? `; ${state}` : ''}`,
    })
  }
  return found
}

/** Copy `from` to `to` (0755) through a temporary name, hashing what is written. */
async function copyHashed(from: string, to: string): Promise<{sha256: string; size: number}> {
  const hash = createHash('sha256')
  let size = 0
  const temp = `${to}.${process.pid}.tmp`
  try {
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk)
        size += chunk.length
        done(null, chunk)
      },
    })
    await pipeline(createReadStream(from), tap, createWriteStream(temp, {mode: 0o755}))
    await chmod(temp, 0o755)
    await rename(temp, to)
  } catch (error) {
    await rm(temp, {force: true})
    throw error
  }
  return {sha256: hash.digest('hex'), size}
}

/**
 * Write the single file of every architecture of `platforms` beside `bundle` and list them in its .sha256 (whose
 * first line, the bundle's own, stays first). Platforms without a single file get a warning through `warn`.
 */
export async function writeTools(bundle: string, platforms: string[], warn: (message: string) => void): Promise<ToolFile[]> {
  const {arches, without} = toolArches(platforms)
  if (without.length > 0) warn(`--with-tool: no kubeferry single file exists for ${without.join(', ')}; nodes of ${without.length === 1 ? 'that platform' : 'those platforms'} import with NAME.install.sh`)
  const sources = await findTools(arches)
  const base = basename(bundle).replace(/\.tar$/, '')
  const tools: ToolFile[] = []
  for (const [arch, source] of sources) {
    const path = join(dirname(bundle), `${base}.kubeferry-linux-${arch}`)
    tools.push({arch, path, source, ...(await copyHashed(source, path))})
  }
  const sums = checksumFileFor(bundle)
  const names = new Set(tools.map((t) => basename(t.path)))
  // A rerun replaces its own lines; the bundle's line and any other stay as they are.
  const kept = (await readFile(sums, 'utf8')).split('\n').filter((line) => line && !names.has(line.replace(/^[0-9a-f]{64} [ *]/, '')))
  const temp = `${sums}.${process.pid}.tmp`
  const text = [...kept, ...tools.map((t) => `${t.sha256}  ${basename(t.path)}`)].join('\n') + '\n'
  await pipeline([text], createWriteStream(temp, {mode: 0o644}))
  await rename(temp, sums)
  return tools
}
