/** Bundles in parts for the tests, made the way an operator would: coreutils `split` and `sha256sum`. */
import {execFile} from 'node:child_process'
import {copyFile, mkdtemp, readdir, rm} from 'node:fs/promises'
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
