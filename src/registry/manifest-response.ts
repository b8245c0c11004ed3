/** Reading a registry's manifest answer: its media type, size bound and the errors that name what is wrong. */
import {KubeferryError} from '../oci/errors.js'
import {MediaType} from '../oci/media-types.js'
import {formatReference, type Reference} from '../oci/reference.js'
import {header} from './http.js'
import type {Endpoint} from './mirrors.js'
import {abandonBody, type TransportResponse} from './transport.js'

export function contentType(res: TransportResponse): string | undefined {
  const value = header(res, 'content-type')
  return value ? value.split(';')[0].trim().toLowerCase() : undefined
}

/** The manifest's media type: its own `mediaType` field, else a specific Content-Type, else inferred from its shape. */
export function manifestMediaType(served: string | undefined, parsed: {mediaType?: unknown; manifests?: unknown; config?: unknown}): string {
  if (typeof parsed.mediaType === 'string' && parsed.mediaType !== '') return parsed.mediaType
  if (served && served !== 'application/json' && served !== 'application/octet-stream' && served !== 'text/plain') return served
  if (Array.isArray(parsed.manifests)) return MediaType.OciIndex
  if (parsed.config) return MediaType.OciManifest
  return served ?? ''
}

export function schema1(name: string): KubeferryError {
  return new KubeferryError('UNSUPPORTED_MEDIA_TYPE', `${name} is a Docker schema 1 manifest, which kubeferry does not support`, {
    hint: 'schema 1 is deprecated and unsafe; re-push the image with a current docker, buildah or skopeo to convert it',
  })
}

export function digestMismatch(ep: Endpoint, ref: Reference, actual: string): KubeferryError {
  return new KubeferryError('DIGEST_MISMATCH', `manifest of ${formatReference(ref)} from ${ep.label} has digest ${actual}, expected ${ref.digest}`, {
    hint: 'the registry served different content than requested; nothing was kept',
  })
}

export async function readLimited(res: TransportResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(header(res, 'content-length'))
  if (Number.isFinite(declared) && declared > limit) {
    abandonBody(res)
    throw new KubeferryError('REGISTRY_ERROR', `${what} is ${declared} bytes, more than the ${limit} allowed`)
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) {
      abandonBody(res)
      throw new KubeferryError('REGISTRY_ERROR', `${what} is more than the ${limit} bytes allowed`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}
