/**
 * A bundle in parts (issue 20): `NAME.tar.001`, `NAME.tar.002`, … are plain consecutive byte ranges of `NAME.tar`, so
 * `cat NAME.tar.0* > NAME.tar` gives the bundle back byte for byte. Beside them `NAME.parts.sha256` (`sha256sum -c`
 * format, one line a part, in order) and, as for a whole bundle, `NAME.tar.sha256` (of the whole) and
 * `NAME.install.sh`. The writer and every reader take these names from here.
 */
import {basename, dirname, join} from 'node:path'
import {KubeferryError} from '../oci/errors.js'

/** Digits of a part's number: `.001` … `.999`; a bundle needing more parts than that is refused. */
export const PART_DIGITS = 3
export const MAX_PARTS = 10 ** PART_DIGITS - 1

/** `k8s.tar`, 1 → `k8s.tar.001` (parts count from 1). */
export function partPath(bundlePath: string, index: number): string {
  if (!Number.isInteger(index) || index < 1 || index > MAX_PARTS) throw new KubeferryError('INTERNAL', `part number ${index} out of range 1..${MAX_PARTS}`)
  return `${bundlePath}.${String(index).padStart(PART_DIGITS, '0')}`
}

/** `k8s.tar.003` → {bundlePath: 'k8s.tar', index: 3}; undefined for a path that is not a part's. */
export function parsePartPath(path: string): {bundlePath: string; index: number} | undefined {
  const m = new RegExp(`^(.+)\\.(\\d{${PART_DIGITS}})$`).exec(path)
  if (!m || Number(m[2]) < 1) return undefined
  return {bundlePath: m[1], index: Number(m[2])}
}

/** `dir/k8s.tar` → `dir/k8s.parts.sha256` (the `.tar` dropped, as for `k8s.install.sh`). */
export function partsChecksumPath(bundlePath: string): string {
  return join(dirname(bundlePath), `${basename(bundlePath).replace(/\.tar$/, '')}.parts.sha256`)
}

/** Number of parts of `size` bytes split at `partSize` (an empty bundle is still one part). */
export function partCount(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize))
}

/**
 * Named sizes for common media. FAT32 is a file-size limit (4 GiB − 1); for discs the capacity less room for the
 * UDF file system and the beside files (install.sh, checksums): single-layer DVD±R holds 4,700,372,992 bytes,
 * BD-25 25,025,314,816, BD-50 twice that.
 */
export const NAMED_SPLIT_SIZES: Record<string, number> = {
  fat32: 4 * 1024 ** 3 - 1,
  dvd: 4_700_372_992 - 64 * 1024 ** 2,
  'bd-25': 25_025_314_816 - 256 * 1024 ** 2,
  'bd-50': 50_050_629_632 - 512 * 1024 ** 2,
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1000, kb: 1000, kib: 1024,
  m: 1000 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1000 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
  t: 1000 ** 4, tb: 1000 ** 4, tib: 1024 ** 4,
}

/** The smallest part size accepted: every part holds at least one tar block and the parts stay few. */
export const MIN_SPLIT_BYTES = 1024 * 1024

/** `4GiB`, `700MB`, `1500000000`, or a named size (`fat32`, `dvd`, `bd-25`, `bd-50`) → bytes. */
export function parseSplitSize(text: string): number {
  const value = text.trim().toLowerCase()
  const named = NAMED_SPLIT_SIZES[value]
  if (named !== undefined) return named
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(value)
  const unit = m ? UNITS[m[2]] : undefined
  if (!m || unit === undefined) {
    throw new KubeferryError('INVALID_ARGUMENT', `invalid --split size "${text}"`, {
      hint: `give bytes with a unit (4GiB, 700MB, 1500000000) or one of ${Object.keys(NAMED_SPLIT_SIZES).join(', ')}`,
    })
  }
  const bytes = Math.floor(Number(m[1]) * unit)
  if (bytes < MIN_SPLIT_BYTES) {
    throw new KubeferryError('INVALID_ARGUMENT', `--split size "${text}" is ${bytes} bytes, less than the ${MIN_SPLIT_BYTES} (1 MiB) a part must hold`, {hint: 'give a larger size, e.g. 4GiB or fat32'})
  }
  return bytes
}
