/**
 * The content check of a bundle in parts: one streaming pass over the parts in order gives each part's sha256 (held
 * against `NAME.parts.sha256`, so a corrupted or swapped part is named) and the whole bundle's (held against
 * `NAME.tar.sha256`, as for a bundle in one file). Also: what to tell the operator when the tar inside the parts does
 * not index (a truncated last part, parts missing after the last one present).
 */
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {basename} from 'node:path'
import {KubeferryError, isKubeferryError} from '../oci/errors.js'
import type {ByteSource} from './byte-source.js'
import {PartedBytes} from './parted-bytes.js'
import {partsCheckCommand, type BundleParts} from './parts.js'

export interface PartHashes {
  /** sha256 hex of each part, in order. */
  parts: string[]
  /** sha256 hex of the whole bundle (the parts end to end). */
  whole: string
}

/** Hash every part and the whole in one pass (1 MiB reads, nothing held). */
export async function hashParts(parts: BundleParts, onBytes?: (bytes: number) => void): Promise<PartHashes> {
  const whole = createHash('sha256')
  const each: string[] = []
  for (const file of parts.files) {
    const part = createHash('sha256')
    for await (const chunk of createReadStream(file, {highWaterMark: 1024 * 1024}) as AsyncIterable<Buffer>) {
      part.update(chunk)
      whole.update(chunk)
      onBytes?.(chunk.length)
    }
    each.push(part.digest('hex'))
  }
  return {parts: each, whole: whole.digest('hex')}
}

export interface PartProblem {
  /** CORRUPTED (matches no listed hash) or REORDERED (holds another part's bytes). */
  kind: 'CORRUPTED' | 'REORDERED'
  part: string
  message: string
}

/** Each part whose sha256 is not the one `NAME.parts.sha256` lists for it, in order (none without that file). */
export function partProblems(parts: BundleParts, hashes: PartHashes): PartProblem[] {
  const listed = parts.listed
  if (!listed || !parts.checksumFile) return []
  const list = basename(parts.checksumFile)
  const out: PartProblem[] = []
  for (const [i, actual] of hashes.parts.entries()) {
    if (actual === listed[i]) continue
    const file = parts.files[i]
    const other = listed.indexOf(actual)
    out.push(
      other >= 0
        ? {kind: 'REORDERED', part: file, message: `part ${file} holds the bytes ${list} lists for ${basename(parts.files[other])}: the parts were swapped or renamed; give each part its own name again`}
        : {kind: 'CORRUPTED', part: file, message: `part ${file} does not match its sha256 in ${list} (sha256 ${actual}, expected ${listed[i]}): it is corrupt; copy ${basename(file)} again`},
    )
  }
  return out
}

/** Throw the first part problem as an operator's error, or return. */
export function assertPartsMatch(parts: BundleParts, hashes: PartHashes, after = ''): void {
  const [first, ...rest] = partProblems(parts, hashes)
  if (!first) return
  const more = rest.length > 0 ? ` (and ${rest.length} more part${rest.length === 1 ? '' : 's'}: ${rest.map((p) => basename(p.part)).join(', ')})` : ''
  throw new KubeferryError('BUNDLE_INVALID', `${first.message}${more}${after}`, {hint: `copy the damaged part again from the source; \`${partsCheckCommand(parts)}\` checks every part`})
}

/**
 * A tar index of a bundle in parts failed: when the parts' checksums are at hand, name the part that is damaged;
 * otherwise say which parts the bundle was read from, since a truncated or missing LAST part looks like a short tar.
 */
export async function explainPartedFailure(bytes: ByteSource, error: unknown): Promise<unknown> {
  if (!(bytes instanceof PartedBytes) || !isKubeferryError(error) || error.code !== 'BUNDLE_INVALID') return error
  const parts = bytes.parts
  if (parts.listed) {
    assertPartsMatch(parts, await hashParts(parts))
    return error
  }
  const last = parts.files[parts.files.length - 1]
  return new KubeferryError('BUNDLE_INVALID', `${error.message} (read from ${parts.files.length} part${parts.files.length === 1 ? '' : 's'}, ${basename(parts.files[0])} to ${basename(last)}: the last part may be truncated or parts after it missing)`, {
    hint: `copy ${basename(last)} and any later parts again from the source; with their .parts.sha256 beside them kubeferry names the damaged part`,
  })
}
