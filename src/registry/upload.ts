/**
 * The push half of the registry client: blob checks, cross-repository mounts, blob uploads and manifest PUTs.
 * Pushes go to the upstream endpoint only (never a mirror).
 */
import type {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'
import {isDigest, type Digest} from '../oci/digest.js'
import {repositoryName, type Reference} from '../oci/reference.js'
import type {RawManifest} from '../oci/types.js'
import type {LogFn} from './auth/credentials.js'
import {onPullEndpoints, pullScope, pushScope} from './endpoints.js'
import {isTransientRegistryError, statusError} from './errors.js'
import {header, type RegistryHttp} from './http.js'
import {endpointRepository, upstreamEndpoint, type Endpoint} from './mirrors.js'
import {backoffDelay, sleep, type RetryPolicy} from './retry.js'
import type {TransportResponse} from './transport.js'

export interface UploadContext {
  http: RegistryHttp
  retry: RetryPolicy
  mirrors: Record<string, string[]>
  log: LogFn
}

export interface BlobDescriptor {
  digest: Digest
  size: number
}

export async function blobExists(ctx: UploadContext, repo: Reference, digest: Digest): Promise<boolean> {
  try {
    return await onPullEndpoints(repo, ctx.mirrors, ctx.log, async (ep) => {
      const path = endpointRepository(ep, repo.repository)
      const res = await ctx.http.request({endpoint: ep, method: 'HEAD', path: `${path}/blobs/${digest}`, scopes: [pullScope(path)]})
      await res.body.dump()
      if (res.status === 200) return true
      throw await statusError(ep, res, `blob ${digest} of ${repositoryName(repo)}`)
    })
  } catch (error) {
    if (error instanceof KubeferryError && error.code === 'NOT_FOUND') return false
    throw error
  }
}

/** Cross-repository mount: true when the registry mounted it (201), false when it wants an upload. */
export async function mountBlob(ctx: UploadContext, repo: Reference, digest: Digest, fromRepository: string): Promise<boolean> {
  const ep = upstreamEndpoint(repo.registry)
  const res = await ctx.http.request({endpoint: ep, method: 'POST', path: `${repo.repository}/blobs/uploads/`, query: {mount: digest, from: fromRepository}, headers: {'content-length': '0'}, scopes: [pushScope(repo.repository), pullScope(fromRepository)]})
  await res.body.dump().catch(() => {})
  if (res.status === 201) return true
  if (res.status === 202) {
    // The registry opened an upload session instead; cancel it (best effort) so nothing dangles.
    const location = header(res, 'location')
    if (location) {
      const cancel = await ctx.http.request({endpoint: ep, method: 'DELETE', url: new URL(location, res.url), scopes: [pushScope(repo.repository)], retries: false}).catch(() => undefined)
      await cancel?.body.dump().catch(() => {})
    }
    return false
  }
  throw await statusError(ep, res, `mount of ${digest} into ${repositoryName(repo)}`)
}

/**
 * Upload one blob: POST a session, then a monolithic PUT ?digest= with the stream; registries that
 * refuse that get the stream as one PATCH then an empty PUT. Each retry reopens the stream: on a network
 * failure, or when the registry answered a transient status (408, 429, 5xx).
 */
export async function uploadBlob(ctx: UploadContext, repo: Reference, desc: BlobDescriptor, open: () => Promise<Readable>): Promise<void> {
  const ep = upstreamEndpoint(repo.registry)
  const policy = ctx.retry
  let chunked = false
  for (let attempt = 1; ; attempt++) {
    try {
      const outcome = await uploadOnce(ctx, ep, repo, desc, open, chunked)
      if (outcome === 'use-chunked' && !chunked) {
        chunked = true
        attempt--
        continue
      }
      return
    } catch (error) {
      const retryable = (error instanceof KubeferryError && error.code === 'NETWORK') || isTransientRegistryError(error)
      if (!retryable || attempt >= policy.attempts) throw error
      ctx.log('debug', `upload of ${desc.digest} to ${repositoryName(repo)} failed (${(error as Error).message}); retrying`)
      await sleep(backoffDelay(policy, attempt))
    }
  }
}

async function uploadOnce(ctx: UploadContext, ep: Endpoint, repo: Reference, desc: BlobDescriptor, open: () => Promise<Readable>, chunked: boolean): Promise<'done' | 'use-chunked'> {
  const what = `upload of blob ${desc.digest} to ${repositoryName(repo)}`
  const scopes = [pushScope(repo.repository)]
  const start = await ctx.http.request({endpoint: ep, method: 'POST', path: `${repo.repository}/blobs/uploads/`, headers: {'content-length': '0'}, scopes})
  if (start.status !== 202) throw await statusError(ep, start, what)
  await start.body.dump()
  let location = uploadLocation(start, what)
  const octets = {'content-type': 'application/octet-stream'}
  if (chunked) {
    const patch = await ctx.http.request({endpoint: ep, method: 'PATCH', url: location, headers: {...octets, ...(desc.size > 0 ? {'content-range': `0-${desc.size - 1}`} : {})}, body: open, contentLength: desc.size, scopes, retries: false})
    if (patch.status !== 202 && patch.status !== 204) throw await statusError(ep, patch, what)
    await patch.body.dump()
    location = uploadLocation(patch, what)
  }
  location.searchParams.set('digest', desc.digest)
  const put = chunked
    ? await ctx.http.request({endpoint: ep, method: 'PUT', url: location, headers: {...octets, 'content-length': '0'}, scopes, retries: false})
    : await ctx.http.request({endpoint: ep, method: 'PUT', url: location, headers: octets, body: open, contentLength: desc.size, scopes, retries: false})
  if (put.status === 201 || put.status === 204) {
    await put.body.dump()
    const stored = header(put, 'docker-content-digest')
    if (stored && isDigest(stored) && stored !== desc.digest) {
      throw new KubeferryError('DIGEST_MISMATCH', `${what}: the registry stored ${stored}`, {hint: 'the blob source is corrupt; verify the bundle'})
    }
    return 'done'
  }
  if (!chunked && (put.status === 405 || put.status === 413 || put.status === 416)) {
    await put.body.dump()
    return 'use-chunked'
  }
  throw await statusError(ep, put, what)
}

/** Store manifest bytes exactly as given, under a tag or its digest; returns the digest. */
export async function putManifest(ctx: UploadContext, repo: Reference, tagOrDigest: string, raw: RawManifest): Promise<Digest> {
  const ep = upstreamEndpoint(repo.registry)
  const name = `${repositoryName(repo)}${isDigest(tagOrDigest) ? '@' : ':'}${tagOrDigest}`
  if (isDigest(tagOrDigest) && tagOrDigest !== raw.digest) {
    throw new KubeferryError('DIGEST_MISMATCH', `manifest for ${name} has digest ${raw.digest}`, {hint: 'this is a bug in the caller: push a manifest under its own digest'})
  }
  const res = await ctx.http.request({endpoint: ep, method: 'PUT', path: `${repo.repository}/manifests/${tagOrDigest}`, headers: {'content-type': raw.mediaType}, body: raw.bytes, scopes: [pushScope(repo.repository)]})
  if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await statusError(ep, res, `manifest ${name}`)
  await res.body.dump()
  const stored = header(res, 'docker-content-digest')
  if (stored && isDigest(stored) && stored !== raw.digest) {
    throw new KubeferryError('DIGEST_MISMATCH', `registry ${ep.label} stored manifest ${name} as ${stored}, expected ${raw.digest}`, {hint: 'the registry rewrote the manifest; it does not keep bytes as pushed'})
  }
  return raw.digest
}

function uploadLocation(res: TransportResponse, what: string): URL {
  const location = header(res, 'location')
  if (!location) throw new KubeferryError('REGISTRY_ERROR', `${what}: the registry sent no upload Location`)
  return new URL(location, res.url)
}
