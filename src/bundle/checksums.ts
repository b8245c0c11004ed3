/**
 * `kubeferry/SHA256SUMS`: `sha256sum` format (`<hex>  <path>`, sorted by path) for every file of the bundle except
 * itself, so `tar -x` followed by `sha256sum -c kubeferry/SHA256SUMS` checks an unpacked bundle, and `verify`
 * checks the same list in place. Also the `<bundle>.sha256` side file.
 */
import {basename} from 'node:path'
import {KubeferryError} from '../oci/errors.js'

export interface ChecksumLine {
  hex: string
  path: string
}

export function formatChecksums(lines: ChecksumLine[]): string {
  return [...lines]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((l) => `${l.hex}  ${l.path}\n`)
    .join('')
}

/** Length of the line `formatChecksums` writes for `path` (`<64 hex>  <path>\n`). */
export function checksumLineLength(path: string): number {
  return 64 + 2 + Buffer.byteLength(path) + 1
}

export function parseChecksums(text: string, file = 'SHA256SUMS'): ChecksumLine[] {
  const out: ChecksumLine[] = []
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue
    const match = /^([a-f0-9]{64}) [ *](.+)$/.exec(line)
    if (!match) throw new KubeferryError('BUNDLE_INVALID', `${file}: line ${i + 1} is not "<sha256>  <path>"`)
    out.push({hex: match[1], path: match[2]})
  }
  return out
}

/** The `<bundle>.sha256` content: checkable with `sha256sum -c` from the bundle's directory. */
export function sideChecksum(hex: string, bundlePath: string): string {
  return `${hex}  ${basename(bundlePath)}\n`
}
