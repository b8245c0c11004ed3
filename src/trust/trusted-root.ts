/**
 * The Sigstore trusted root (issue 19 d4, keyless): the `trusted_root.json` an operator fetched on the connected side
 * (`cosign trusted-root create`, or sigstore's TUF repository), naming the Fulcio CAs, Rekor logs and CT logs that
 * keyless signatures are checked against, offline. `create --trusted-root FILE` carries it in the bundle (a blob that
 * bundle.json's `trustedRoot` names: loaders never see it); `--trusted-root FILE` inside overrides the carried one.
 * Only read and held to its shape here; @sigstore/verify takes it apart in keyless.ts (loaded only when needed).
 */
import {readFile, stat} from 'node:fs/promises'
import {createHash} from 'node:crypto'
import {KubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import type {BundleLayer} from '../bundle/layout.js'

/** A trusted root is a few kilobytes (sigstore's public-good one is under 20 KB); more is not one. */
export const MAX_TRUSTED_ROOT_BYTES = 1024 * 1024
/** `application/vnd.dev.sigstore.trustedroot+json;version=0.1` and the later `…trustedroot.v0.2+json`. */
const MEDIA_TYPE = /^application\/vnd\.dev\.sigstore\.trustedroot(\.v0\.\d+)?\+json(;\s*version=0\.\d+)?$/

export interface TrustedRootFile {
  /** The file's bytes, as given (they are what the bundle carries). */
  bytes: Buffer
  /** Its `mediaType` field. */
  mediaType: string
  /** Where it came from, for messages: the file, or `the bundle's (sha256:…)`. */
  origin: string
  /** Its parsed JSON. */
  json: Record<string, unknown>
}

const invalid = (origin: string, why: string): KubeferryError =>
  new KubeferryError('INVALID_ARGUMENT', `trusted root ${origin} ${why}`, {
    hint: 'give the Sigstore trusted_root.json fetched on the connected side (e.g. `cosign trusted-root create`, or trusted_root.json from sigstore\'s TUF repository); nothing was checked',
  })

/** Hold `bytes` to a trusted root's shape: JSON, a trusted root media type, CAs and transparency logs. */
export function parseTrustedRoot(bytes: Buffer, origin: string): TrustedRootFile {
  if (bytes.length > MAX_TRUSTED_ROOT_BYTES) throw invalid(origin, `is ${bytes.length} bytes, more than the ${MAX_TRUSTED_ROOT_BYTES} a trusted root may be`)
  let json: Record<string, unknown>
  try {
    json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
  } catch {
    throw invalid(origin, 'is not JSON')
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw invalid(origin, 'is not a JSON object')
  const mediaType = json.mediaType
  if (typeof mediaType !== 'string' || !MEDIA_TYPE.test(mediaType)) throw invalid(origin, `has mediaType ${JSON.stringify(mediaType ?? null)}, not a Sigstore trusted root's (application/vnd.dev.sigstore.trustedroot+json;version=0.1)`)
  for (const field of ['tlogs', 'certificateAuthorities']) {
    if (!Array.isArray(json[field]) || (json[field] as unknown[]).length === 0) throw invalid(origin, `names no ${field} (keyless signatures cannot be checked without them)`)
  }
  return {bytes, mediaType, origin, json}
}

/** --trusted-root FILE. */
export async function readTrustedRootFile(file: string): Promise<TrustedRootFile> {
  let bytes: Buffer
  try {
    const info = await stat(file)
    if (!info.isFile()) throw Object.assign(new Error(), {code: info.isDirectory() ? 'EISDIR' : 'ENOTREG'})
    if (info.size > MAX_TRUSTED_ROOT_BYTES) throw invalid(file, `is ${info.size} bytes, more than the ${MAX_TRUSTED_ROOT_BYTES} a trusted root may be`)
    bytes = await readFile(file)
  } catch (error) {
    if (error instanceof KubeferryError) throw error
    throw new KubeferryError('IO', `cannot read trusted root ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`, {hint: 'check the path and permissions'})
  }
  return parseTrustedRoot(bytes, file)
}

/** The descriptor bundle.json records for a carried trusted root. */
export function trustedRootDescriptor(root: TrustedRootFile): BundleLayer {
  return {digest: `sha256:${createHash('sha256').update(root.bytes).digest('hex')}` as Digest, size: root.bytes.length, mediaType: root.mediaType}
}
