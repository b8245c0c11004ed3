/**
 * Finding a bundle's parts (issue 20) and checking them before anything reads the bundle's bytes: given a part
 * (`k8s.tar.001`, or any other part) or the bundle's own path when only its parts are there, the parts in order, from
 * `k8s.parts.sha256` when it is beside them (it lists them and their sha256), else the consecutive `.001 .002 …` files.
 * A missing part, a part beyond the list, and a part whose size breaks the split (every part but the last has the
 * same size, the last no larger) are refused here, naming the part; their content is checked by sha256 in
 * parts-check.ts when a command asks for it.
 */
import {existsSync, statSync} from 'node:fs'
import {readdir, readFile, stat} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {KubeferryError} from '../oci/errors.js'
import {parseChecksums} from './checksums.js'
import {MAX_PARTS, parsePartPath, partPath, partsChecksumPath} from './parts-naming.js'

export interface BundleParts {
  /** The whole bundle's path (`dir/k8s.tar`), whether or not a file is there. */
  bundlePath: string
  /** The parts' paths in order. */
  files: string[]
  sizes: number[]
  /** `dir/k8s.parts.sha256` when it is there. */
  checksumFile?: string
  /** Its sha256 (hex) per part, in order, when it is there. */
  listed?: string[]
}

/** What to run to find the damaged part, from the parts' directory. */
export function partsCheckCommand(parts: Pick<BundleParts, 'bundlePath'>): string {
  const dir = dirname(parts.bundlePath)
  return `${dir === '.' ? '' : `cd ${dir} && `}sha256sum -c ${basename(partsChecksumPath(parts.bundlePath))}`
}

function refuse(parts: Pick<BundleParts, 'bundlePath'>, message: string, todo: string): KubeferryError {
  return new KubeferryError('BUNDLE_INVALID', message, {hint: `${todo}; \`${partsCheckCommand(parts)}\` checks every part`})
}

/**
 * True when `path` names a bundle in parts: a part's path, or a bundle path with no file but a `.001` beside it.
 * Synchronous and cheap (one or two stats): the byte source's open asks it for every bundle.
 */
export function isPartedPath(path: string): boolean {
  if (parsePartPath(path)) return true
  return !existsSync(path) && statSync(partPath(path, 1), {throwIfNoEntry: false})?.isFile() === true
}

/** The part numbers present beside `bundlePath` (`k8s.tar.NNN` files in its directory), sorted. */
async function presentParts(bundlePath: string): Promise<number[]> {
  const dir = dirname(bundlePath)
  const base = basename(bundlePath)
  const names = await readdir(dir).catch(() => [] as string[])
  const found: number[] = []
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue
    const parsed = parsePartPath(join(dir, name))
    if (parsed && parsed.bundlePath === bundlePath) found.push(parsed.index)
  }
  return found.sort((a, b) => a - b)
}

/** The parts of the bundle `path` names (see isPartedPath), checked for presence and sizes. */
export async function findParts(path: string): Promise<BundleParts> {
  const bundlePath = parsePartPath(path)?.bundlePath ?? path
  const label = {bundlePath}
  const present = await presentParts(bundlePath)
  const sumsPath = partsChecksumPath(bundlePath)
  let count: number
  let listed: string[] | undefined
  if (existsSync(sumsPath)) {
    // One short line a part: anything larger is not this list (and is not read into memory).
    if ((await stat(sumsPath)).size > MAX_PARTS * 512) throw refuse(label, `${sumsPath} is larger than a list of ${MAX_PARTS} parts can be`, 'copy the parts and their .parts.sha256 again')
    const lines = parseChecksums(await readFile(sumsPath, 'utf8'), sumsPath)
    if (lines.length === 0 || lines.length > MAX_PARTS) throw refuse(label, `${sumsPath} lists ${lines.length} parts`, 'copy the parts and their .parts.sha256 again')
    for (const [i, line] of lines.entries()) {
      const expected = basename(partPath(bundlePath, i + 1))
      if (line.path.replace(/^\*/, '') !== expected) {
        throw refuse(label, `${sumsPath} line ${i + 1} names "${line.path}", not ${expected}: it is not the checksum list of these parts`, 'copy the parts and their .parts.sha256 again, from the same split')
      }
    }
    count = lines.length
    listed = lines.map((l) => l.hex)
    const extra = present.filter((n) => n > count)
    if (extra.length > 0) {
      throw refuse(label, `${partPath(bundlePath, extra[0])} is an extra part: ${basename(sumsPath)} lists ${count} part${count === 1 ? '' : 's'} (up to ${basename(partPath(bundlePath, count))})`, `remove ${basename(partPath(bundlePath, extra[0]))} (it is not part of this bundle) or copy the parts again from the same split`)
    }
  } else {
    count = present.length === 0 ? 1 : present[present.length - 1]
  }
  const files = Array.from({length: count}, (_, i) => partPath(bundlePath, i + 1))
  const sizes: number[] = []
  for (const file of files) {
    const info = await stat(file).catch(() => undefined)
    if (!info?.isFile()) {
      const of = listed ? `${basename(sumsPath)} lists ${count} parts` : `the parts go up to ${basename(files[count - 1])}`
      throw refuse(label, `part ${file} is missing (${of}): the bundle cannot be read without it`, `copy ${basename(file)} again from the source`)
    }
    sizes.push(info.size)
  }
  checkSizes({bundlePath, files, sizes})
  return {bundlePath, files, sizes, ...(listed ? {checksumFile: sumsPath, listed} : {})}
}

/** Every part but the last is as large as the largest of them; the last is no larger; none is empty. */
function checkSizes(parts: Pick<BundleParts, 'bundlePath' | 'files' | 'sizes'>): void {
  const {files, sizes} = parts
  const last = files.length - 1
  const partSize = last === 0 ? sizes[0] : Math.max(...sizes.slice(0, last))
  for (const [i, size] of sizes.entries()) {
    const name = basename(files[i])
    if (size === 0) throw refuse(parts, `part ${files[i]} is empty: it was truncated in the copy`, `copy ${name} again from the source`)
    if (i < last && size < partSize) {
      throw refuse(parts, `part ${files[i]} is ${size} bytes where the other parts are ${partSize}: it is truncated (or from another split)`, `copy ${name} again from the source`)
    }
    if (i === last && last > 0 && size > partSize) {
      throw refuse(parts, `part ${files[i]} is ${size} bytes, larger than the ${partSize} of the parts before it: the last part cannot be the largest (a part from another split, or parts missing before it)`, `copy the parts again from the same split`)
    }
  }
}
