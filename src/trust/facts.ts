/**
 * The facts a bundle signature names, read from the bundle itself: its size, the sha256 of its whole bytes (one
 * streaming pass; a bundle in parts is hashed part after part, each part held against NAME.parts.sha256 on the way,
 * never joined on disk), and the sha256 of its kubeferry/bundle.json (from the tar index: a header scan, not a read).
 */
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {readFile, stat} from 'node:fs/promises'
import {basename} from 'node:path'
import {checksumFileFor} from '../bundle/contract.js'
import {METADATA_FILE} from '../bundle/layout.js'
import {assertPartsMatch, hashParts} from '../bundle/parts-check.js'
import {findParts, isPartedPath} from '../bundle/parts.js'
import {parsePartPath} from '../bundle/parts-naming.js'
import {BundleReader} from '../bundle/reader.js'
import {KubeferryError} from '../oci/errors.js'
import type {BundleFacts} from './envelope.js'

/** The whole bundle's path for a bundle path or any of its parts' paths (`k8s.tar.001` → `k8s.tar`). */
export function wholeBundlePath(path: string): string {
  return isPartedPath(path) ? (parsePartPath(path)?.bundlePath ?? path) : path
}

/** sha256 hex of the bundle's kubeferry/bundle.json. */
export async function metadataSha256(path: string): Promise<string> {
  const reader = await BundleReader.open(path)
  return createHash('sha256').update(await reader.readFile(METADATA_FILE)).digest('hex')
}

/** Size and whole-file sha256 of the bundle `path` names (its parts, when it is in parts). */
export async function hashBundle(path: string): Promise<{sha256: string; size: number}> {
  if (isPartedPath(path)) {
    const parts = await findParts(path)
    const hashes = await hashParts(parts)
    assertPartsMatch(parts, hashes)
    return {sha256: hashes.whole, size: parts.sizes.reduce((n, s) => n + s, 0)}
  }
  const hash = createHash('sha256')
  let size = 0
  try {
    for await (const chunk of createReadStream(path, {highWaterMark: 1024 * 1024}) as AsyncIterable<Buffer>) {
      hash.update(chunk)
      size += chunk.length
    }
  } catch (error) {
    throw new KubeferryError('IO', `cannot read bundle ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {hint: 'check the path and permissions'})
  }
  return {sha256: hash.digest('hex'), size}
}

/** The sha256 hex NAME.tar.sha256 holds, if that file is beside the bundle. */
export async function sideChecksumOf(bundlePath: string): Promise<string | undefined> {
  const file = checksumFileFor(bundlePath)
  const info = await stat(file).catch(() => undefined)
  if (!info?.isFile() || info.size > 4096) return undefined
  return /^([0-9a-f]{64})\b/.exec(await readFile(file, 'utf8'))?.[1]
}

/**
 * The facts of the bundle at `path`. `known` (create's own sha256 and size, just written) saves the pass over the
 * bytes; otherwise the bundle is hashed, and when NAME.tar.sha256 is beside it the two must agree (signing a bundle
 * that does not match its own checksum would vouch for a damaged copy).
 */
export async function bundleFacts(path: string, known?: {sha256: string; size: number}): Promise<BundleFacts> {
  const whole = wholeBundlePath(path)
  const hashed = known ?? (await hashBundle(path))
  if (!known) {
    const side = await sideChecksumOf(whole)
    if (side && side !== hashed.sha256) {
      throw new KubeferryError('BUNDLE_INVALID', `bundle ${whole} does not match ${checksumFileFor(whole)} (sha256 ${hashed.sha256}, expected ${side}): it is corrupt or incomplete`, {hint: 'copy the bundle again from its source (or rebuild it) before signing or using it'})
    }
  }
  return {name: basename(whole), sha256: hashed.sha256, size: hashed.size, metadataSha256: await metadataSha256(path)}
}
