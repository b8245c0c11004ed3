/** Bundles in parts for the tests, made the way an operator would: coreutils `split` and `sha256sum`. */
import {execFile} from 'node:child_process'
import {copyFile, mkdtemp, open, readdir, rename, rm, truncate} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import {promisify} from 'node:util'

const execFileP = promisify(execFile)

export interface SplitBundle {
  dir: string
  /** `dir/NAME.tar` (absent: only the parts are there). */
  bundlePath: string
  parts: string[]
}

/**
 * Copy `whole` into a fresh directory as NAME.tar.001… of `partSize` bytes (`split -b SIZE -d -a 3
 * --numeric-suffixes=1`), with NAME.parts.sha256 (`sha256sum` of the parts, in order) and NAME.tar.sha256; the whole
 * file is removed, so only the parts remain.
 */
export async function splitBundle(whole: string, partSize: number, options: {wholeChecksum?: boolean; partsChecksum?: boolean} = {}): Promise<SplitBundle> {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-parts-'))
  const name = basename(whole)
  const bundlePath = join(dir, name)
  await copyFile(whole, bundlePath)
  await execFileP('split', ['-b', String(partSize), '-d', '-a', '3', '--numeric-suffixes=1', name, `${name}.`], {cwd: dir})
  const parts = (await readdir(dir)).filter((f) => /\.\d{3}$/.test(f)).sort()
  if (options.partsChecksum !== false) await execFileP('sh', ['-c', `sha256sum ${parts.join(' ')} > ${name.replace(/\.tar$/, '')}.parts.sha256`], {cwd: dir})
  if (options.wholeChecksum !== false) await execFileP('sh', ['-c', `sha256sum ${name} > ${name}.sha256`], {cwd: dir})
  await rm(bundlePath)
  return {dir, bundlePath, parts: parts.map((p) => join(dir, p))}
}

/** The part faults every consumer must refuse, each with what its message must say (parts as splitBundle makes them, ≥ 4). */
export const FAULTS: Array<[string, (s: SplitBundle) => Promise<void>, RegExp]> = [
  ['missing', (s) => rm(s.parts[1]), /k8s\.tar\.002 is missing/],
  ['extra', (s) => copyFile(s.parts[0], `${s.bundlePath}.${String(s.parts.length + 1).padStart(3, '0')}`), /k8s\.tar\.0\d\d is an extra part/],
  [
    'reordered',
    async (s) => {
      await rename(s.parts[0], `${s.parts[0]}.x`)
      await rename(s.parts[2], s.parts[0])
      await rename(`${s.parts[0]}.x`, s.parts[2])
    },
    /k8s\.tar\.001 holds the bytes k8s\.parts\.sha256 lists for k8s\.tar\.003/,
  ],
  ['truncated', (s) => truncate(s.parts[2], 4096), /k8s\.tar\.003 is 4096 bytes where the other parts are \d+: it is truncated/],
  [
    'corrupted',
    async (s) => {
      const handle = await open(s.parts[3], 'r+')
      const byte = Buffer.alloc(1)
      const at = (await handle.stat()).size - 5000
      await handle.read(byte, 0, 1, at)
      await handle.write(Buffer.from([byte[0] ^ 0x40]), 0, 1, at)
      await handle.close()
    },
    /k8s\.tar\.004 does not match its sha256 in k8s\.parts\.sha256/,
  ],
]

/** A copy of `split` (parts and both checksum files) in a fresh directory, then damaged. */
export async function faultyCopy(split: SplitBundle, damage: (s: SplitBundle) => Promise<void>): Promise<SplitBundle> {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-parts-cli-fault-'))
  const copy: SplitBundle = {dir, bundlePath: join(dir, basename(split.bundlePath)), parts: split.parts.map((p) => join(dir, basename(p)))}
  for (const file of [...split.parts, `${split.bundlePath}.sha256`, join(split.dir, 'k8s.parts.sha256')]) await copyFile(file, join(dir, basename(file)))
  await damage(copy)
  return copy
}
