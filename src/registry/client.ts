import type {Hash} from 'node:crypto'
import type {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'
import {DigestVerifier, isDigest, sha256Digest, type Digest} from '../oci/digest.js'
import {MANIFEST_ACCEPT, SCHEMA1_MEDIA_TYPES, MediaType, isImageManifestMediaType, isIndexMediaType} from '../oci/media-types.js'
import type {ImageIndex, ImageManifest, ParsedManifest, RawManifest} from '../oci/types.js'
import {defaultCredentialProvider, type CredentialProvider, type LogFn} from './auth/credentials.js'
import {repositoryScope} from './auth/token.js'
import {header, networkError, RegistryHttp, statusError} from './http.js'
import {endpointRepository, pullEndpoints, upstreamEndpoint, type Endpoint} from './mirrors.js'
import {formatReference, repositoryName, type Reference} from '../oci/reference.js'
import {backoffDelay, isRetryableNetworkError, retryPolicy, sleep, type RetryOptions} from './retry.js'
import {Transport, type TransportResponse} from './transport.js'

export type {CredentialProvider, Credential} from './auth/credentials.js'
export {defaultCredentialProvider} from './auth/credentials.js'

export interface RegistryClientOptions {
  /** Upstream host (`registry.k8s.io`, `docker.io`) → mirror base URLs, tried in order before the upstream. */
  mirrors?: Record<string, string[]>
  /** host[:port] allowed over plain http or unverified TLS. Loopback hosts are allowed by default, as docker does. */
  insecureRegistries?: string[]
  caFile?: string
  /** Default: docker config.json + containers auth.json (see defaultCredentialProvider). */
  credentials?: CredentialProvider
  retry?: RetryOptions
  userAgent?: string
  log?: LogFn
  /** Give up on a connection that sends nothing for this long (default 60 s). */
  stallTimeoutMs?: number
}

export interface BlobDescriptor {
  digest: Digest
  size: number
}

/** Manifests larger than this are refused (containerd uses the same bound). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024
/** Blob streams give up after this many interruptions without progress. */
const MAX_STALLED_RESUMES = 5
const MAX_RESUMES = 100

/**
 * The registry HTTP API client (distribution spec) for pulls and pushes. Pulls go to the
 * configured mirrors first, then the upstream registry; names stay canonical throughout.
 */
export class RegistryClient {
  private readonly transport: Transport
  private readonly http: RegistryHttp
  private readonly mirrors: Record<string, string[]>
  private readonly log: LogFn

  constructor(options: RegistryClientOptions = {}) {
    this.log = options.log ?? (() => {})
    this.mirrors = options.mirrors ?? {}
    // Validate mirror URLs now, so a typo fails before any download.
    for (const registry of Object.keys(this.mirrors)) pullEndpoints(registry, this.mirrors)
    this.transport = new Transport({
      caFile: options.caFile,
      insecureRegistries: options.insecureRegistries,
      userAgent: options.userAgent ?? 'kubeferry',
      stallTimeoutMs: options.stallTimeoutMs,
      retry: retryPolicy(options.retry),
      log: this.log,
    })
    this.http = new RegistryHttp(this.transport, options.credentials ?? defaultCredentialProvider({log: this.log}))
  }

  // ---------------------------------------------------------------- manifests

  /** The manifest or index `ref` names (by digest when pinned, else by tag), verified against its digest. */
  getManifest(ref: Reference): Promise<ParsedManifest> {
    return this.onPullEndpoints(ref, (ep) => this.fetchManifest(ep, ref))
  }

  getManifestByDigest(repo: Reference, digest: Digest): Promise<ParsedManifest> {
    return this.getManifest({registry: repo.registry, repository: repo.repository, digest})
  }

  /** Digest, media type and size of `ref` without downloading it; `undefined` when it does not exist. */
  async headManifest(ref: Reference): Promise<{digest: Digest; mediaType: string; size: number} | undefined> {
    try {
      return await this.onPullEndpoints(ref, async (ep) => {
        const repo = endpointRepository(ep, ref.repository)
        const res = await this.http.request({endpoint: ep, method: 'HEAD', path: `${repo}/manifests/${target(ref)}`, headers: {accept: MANIFEST_ACCEPT.join(', ')}, scopes: [pull(repo)]})
        await res.body.dump()
        if (res.status !== 200) throw await statusError(ep, res, `image ${formatReference(ref)}`)
        const served = header(res, 'docker-content-digest')
        const mediaType = contentType(res)
        const size = Number(header(res, 'content-length'))
        if (ref.digest && served && served !== ref.digest) throw digestMismatch(ep, ref, served)
        const digest = ref.digest ?? (served && isDigest(served) ? served : undefined)
        if (digest && mediaType && Number.isFinite(size)) return {digest, mediaType, size}
        // The registry did not say enough in the HEAD answer: fetch the bytes and measure them.
        const full = await this.fetchManifest(ep, ref)
        return {digest: full.raw.digest, mediaType: full.raw.mediaType, size: full.raw.bytes.length}
      })
    } catch (error) {
      if (error instanceof KubeferryError && error.code === 'NOT_FOUND') return undefined
      throw error
    }
  }

  private async fetchManifest(ep: Endpoint, ref: Reference): Promise<ParsedManifest> {
    const repo = endpointRepository(ep, ref.repository)
    const name = formatReference(ref)
    const res = await this.http.request({endpoint: ep, method: 'GET', path: `${repo}/manifests/${target(ref)}`, headers: {accept: MANIFEST_ACCEPT.join(', ')}, scopes: [pull(repo)]})
    if (res.status !== 200) {
      const where = ep.mirror ? ep.label : `registry ${ep.label}`
      throw await statusError(ep, res, `image ${name}`, `image ${name} not found in ${where} (${ref.digest ? 'digest' : 'tag'} missing?)`)
    }
    const bytes = await readLimited(res, MAX_MANIFEST_BYTES, `manifest of ${name}`)
    const served = contentType(res)
    if (served && SCHEMA1_MEDIA_TYPES.has(served)) throw schema1(name)
    const digest = sha256Digest(bytes)
    if (ref.digest && digest !== ref.digest) throw digestMismatch(ep, ref, digest)
    const claimed = header(res, 'docker-content-digest')
    if (claimed && isDigest(claimed) && claimed !== digest) {
      throw new KubeferryError('DIGEST_MISMATCH', `manifest of ${name} from ${ep.label} has digest ${digest}, but the registry says ${claimed}`, {hint: 'the registry or a proxy altered the manifest; nothing was kept'})
    }
    let parsed: {schemaVersion?: unknown; mediaType?: unknown; manifests?: unknown; config?: unknown; layers?: unknown}
    try {
      parsed = JSON.parse(bytes.toString('utf8'))
    } catch {
      throw new KubeferryError('REGISTRY_ERROR', `manifest of ${name} from ${ep.label} is not valid JSON`)
    }
    if (parsed.schemaVersion === 1) throw schema1(name)
    const mediaType = manifestMediaType(served, parsed)
    const raw: RawManifest = {bytes, mediaType, digest}
    if (isIndexMediaType(mediaType) && Array.isArray(parsed.manifests)) return {kind: 'index', raw, index: parsed as unknown as ImageIndex}
    if (isImageManifestMediaType(mediaType) && parsed.config && Array.isArray(parsed.layers)) return {kind: 'manifest', raw, manifest: parsed as unknown as ImageManifest}
    throw new KubeferryError('UNSUPPORTED_MEDIA_TYPE', `${name} is a ${mediaType || 'manifest of unknown type'}, not an image or image index`, {hint: 'kubeferry carries container images (OCI or Docker v2 manifests and indexes)'})
  }

  // ---------------------------------------------------------------- blobs

  /**
   * A stream of the blob's bytes, verified (sha256 and size) as they flow: the stream ends only if
   * everything matched and errors with DIGEST_MISMATCH/SIZE_MISMATCH otherwise. Redirects are
   * followed without Authorization; an interrupted transfer resumes with Range (a server that
   * ignores Range is read again from the start, skipping what was already delivered).
   * `onProgress` gets each increment of bytes delivered (never counting a byte twice across resumes);
   * aborting `signal` destroys the stream.
   *
   * `resume` continues a download an earlier run kept: the first request asks for the bytes from `resume.offset`,
   * and the hash of the kept ones (`resume.hash`) is continued. The stream's `startsAt` says where its first byte is:
   * `resume.offset` when the registry honoured the Range request, else 0 (the whole blob, hashed afresh).
   */
  async openBlob(
    repo: Reference,
    desc: BlobDescriptor,
    options: {onProgress?: (bytes: number) => void; signal?: AbortSignal; resume?: {offset: number; hash: Hash}} = {},
  ): Promise<Readable & {startsAt: number}> {
    options.signal?.throwIfAborted()
    const label = `blob ${desc.digest} of ${repositoryName(repo)}`
    const offset = options.resume && options.resume.offset > 0 && options.resume.offset < desc.size ? options.resume.offset : 0
    let ep: Endpoint | undefined
    let first = await this.onPullEndpoints(repo, async (candidate) => {
      const res = await this.blobRequest(candidate, repo, desc.digest, offset)
      ep = candidate
      return res
    })
    let startsAt = first.status === 206 ? rangeStart(first) : 0
    if (startsAt !== offset && startsAt !== 0) {
      // A range we did not ask for: take the whole blob instead.
      await first.body.dump()
      first = await this.blobRequest(ep as Endpoint, repo, desc.digest, 0)
      startsAt = 0
    }
    // A 1 MiB buffer each side: with the default 16 KiB every 64 KiB socket chunk would wait for a 'drain'.
    const continued = startsAt > 0 ? {hash: options.resume!.hash, offset: startsAt} : {}
    const verifier = new DigestVerifier(desc.digest, desc.size, {label, highWaterMark: 1024 * 1024, ...continued})
    const signal = options.signal
    if (signal) {
      const abort = () => verifier.destroy(new KubeferryError('INTERNAL', `${label}: download cancelled`, {cause: signal.reason}))
      signal.addEventListener('abort', abort, {once: true})
      verifier.once('close', () => signal.removeEventListener('abort', abort))
    }
    void this.pump(ep as Endpoint, repo, desc, first, startsAt, verifier, label, options.onProgress)
    return Object.assign(verifier, {startsAt})
  }

  private async blobRequest(ep: Endpoint, repo: Reference, digest: Digest, offset: number): Promise<TransportResponse> {
    const path = endpointRepository(ep, repo.repository)
    const res = await this.http.request({endpoint: ep, method: 'GET', path: `${path}/blobs/${digest}`, headers: offset > 0 ? {range: `bytes=${offset}-`} : {}, scopes: [pull(path)]})
    if (res.status === 200 || res.status === 206) return res
    if (res.status === 416 && offset > 0) {
      await res.body.dump() // the registry will not serve that range: the whole blob then
      return this.blobRequest(ep, repo, digest, 0)
    }
    throw await statusError(ep, res, `blob ${digest} of ${repositoryName(repo)}`)
  }

  /** Feed `out` from `first` (whose first byte is blob byte `start`), resuming with Range when the connection drops. */
  private async pump(ep: Endpoint, repo: Reference, desc: BlobDescriptor, first: TransportResponse, start: number, out: DigestVerifier, label: string, onProgress?: (bytes: number) => void): Promise<void> {
    let res = first
    let delivered = start
    let skip = 0
    let stalled = 0
    let resumes = 0
    const stop = () => res.body.destroy()
    out.once('close', stop)
    try {
      for (;;) {
        const before = delivered
        try {
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            if (out.destroyed) return
            let data = chunk
            if (skip > 0) {
              const drop = Math.min(skip, data.length)
              skip -= drop
              data = data.subarray(drop)
              if (data.length === 0) continue
            }
            delivered += data.length
            if (!out.write(data)) await drained(out)
            onProgress?.(data.length)
          }
          if (!out.destroyed) out.end()
          return
        } catch (error) {
          if (out.destroyed) return
          stalled = delivered > before ? 0 : stalled + 1
          resumes++
          if (!isRetryableNetworkError(error) || stalled >= MAX_STALLED_RESUMES || resumes > MAX_RESUMES || delivered >= desc.size) {
            const e = networkError(ep, error)
            out.destroy(new KubeferryError(e.code, `${label}: transfer failed after ${delivered} of ${desc.size} bytes (${e.message})`, {hint: e.hint, cause: error}))
            return
          }
          this.log('debug', `${label}: connection lost after ${delivered} bytes; resuming`)
          await sleep(backoffDelay(this.transport.retry, stalled + 1))
          res = await this.blobRequest(ep, repo, desc.digest, delivered)
          skip = 0
          if (res.status === 206) {
            if (rangeStart(res) !== delivered) skip = Number.NaN
          } else {
            skip = delivered
          }
          if (Number.isNaN(skip)) {
            await res.body.dump()
            res = await this.blobRequest(ep, repo, desc.digest, 0)
            skip = delivered
          }
        }
      }
    } catch (error) {
      if (!out.destroyed) out.destroy(error instanceof Error ? error : new Error(String(error)))
    } finally {
      out.off('close', stop)
    }
  }

  async blobExists(repo: Reference, digest: Digest): Promise<boolean> {
    try {
      return await this.onPullEndpoints(repo, async (ep) => {
        const path = endpointRepository(ep, repo.repository)
        const res = await this.http.request({endpoint: ep, method: 'HEAD', path: `${path}/blobs/${digest}`, scopes: [pull(path)]})
        await res.body.dump()
        if (res.status === 200) return true
        throw await statusError(ep, res, `blob ${digest} of ${repositoryName(repo)}`)
      })
    } catch (error) {
      if (error instanceof KubeferryError && error.code === 'NOT_FOUND') return false
      throw error
    }
  }

  /** Every tag of the repository, following `Link: <…>; rel="next"` pages. */
  listTags(repo: Reference): Promise<string[]> {
    return this.onPullEndpoints(repo, async (ep) => {
      const path = endpointRepository(ep, repo.repository)
      const tags: string[] = []
      let url: URL | undefined = new URL(`${path}/tags/list`, await this.http.baseUrl(ep))
      for (let page = 0; url && page < 10_000; page++) {
        const res: TransportResponse = await this.http.request({endpoint: ep, method: 'GET', url, scopes: [pull(path)]})
        if (res.status !== 200) throw await statusError(ep, res, `tags of ${repositoryName(repo)}`, `repository ${repositoryName(repo)} not found in ${ep.mirror ? ep.label : `registry ${ep.label}`}`)
        const json = JSON.parse((await readLimited(res, 64 * 1024 * 1024, `tag list of ${repositoryName(repo)}`)).toString('utf8')) as {tags?: unknown}
        if (Array.isArray(json.tags)) tags.push(...json.tags.filter((t): t is string => typeof t === 'string'))
        url = nextLink(header(res, 'link'), res.url)
      }
      return tags
    })
  }

  // ---------------------------------------------------------------- push primitives

  /** Cross-repository mount: true when the registry mounted it (201), false when it wants an upload. */
  async mountBlob(repo: Reference, digest: Digest, fromRepository: string): Promise<boolean> {
    const ep = upstreamEndpoint(repo.registry)
    const res = await this.http.request({endpoint: ep, method: 'POST', path: `${repo.repository}/blobs/uploads/`, query: {mount: digest, from: fromRepository}, headers: {'content-length': '0'}, scopes: [push(repo.repository), pull(fromRepository)]})
    await res.body.dump().catch(() => {})
    if (res.status === 201) return true
    if (res.status === 202) {
      // The registry opened an upload session instead; cancel it (best effort) so nothing dangles.
      const location = header(res, 'location')
      if (location) {
        const cancel = await this.http.request({endpoint: ep, method: 'DELETE', url: new URL(location, res.url), scopes: [push(repo.repository)], retries: false}).catch(() => undefined)
        await cancel?.body.dump().catch(() => {})
      }
      return false
    }
    throw await statusError(ep, res, `mount of ${digest} into ${repositoryName(repo)}`)
  }

  /**
   * Upload one blob: POST a session, then a monolithic PUT ?digest= with the stream; registries that
   * refuse that get the stream as one PATCH then an empty PUT. Each retry reopens the stream.
   */
  async uploadBlob(repo: Reference, desc: BlobDescriptor, open: () => Promise<Readable>): Promise<void> {
    const ep = upstreamEndpoint(repo.registry)
    const policy = this.transport.retry
    let chunked = false
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await this.uploadOnce(ep, repo, desc, open, chunked)
        if (outcome === 'use-chunked' && !chunked) {
          chunked = true
          attempt--
          continue
        }
        return
      } catch (error) {
        const retryable = error instanceof KubeferryError && (error.code === 'NETWORK' || (error.code === 'REGISTRY_ERROR' && /HTTP 5\d\d|HTTP 408|rate-limit/.test(error.message)))
        if (!retryable || attempt >= policy.attempts) throw error
        this.log('debug', `upload of ${desc.digest} to ${repositoryName(repo)} failed (${(error as Error).message}); retrying`)
        await sleep(backoffDelay(policy, attempt))
      }
    }
  }

  private async uploadOnce(ep: Endpoint, repo: Reference, desc: BlobDescriptor, open: () => Promise<Readable>, chunked: boolean): Promise<'done' | 'use-chunked'> {
    const what = `upload of blob ${desc.digest} to ${repositoryName(repo)}`
    const scopes = [push(repo.repository)]
    const start = await this.http.request({endpoint: ep, method: 'POST', path: `${repo.repository}/blobs/uploads/`, headers: {'content-length': '0'}, scopes})
    if (start.status !== 202) throw await statusError(ep, start, what)
    await start.body.dump()
    let location = uploadLocation(start, what)
    const octets = {'content-type': 'application/octet-stream'}
    if (chunked) {
      const patch = await this.http.request({endpoint: ep, method: 'PATCH', url: location, headers: {...octets, ...(desc.size > 0 ? {'content-range': `0-${desc.size - 1}`} : {})}, body: open, contentLength: desc.size, scopes, retries: false})
      if (patch.status !== 202 && patch.status !== 204) throw await statusError(ep, patch, what)
      await patch.body.dump()
      location = uploadLocation(patch, what)
    }
    location.searchParams.set('digest', desc.digest)
    const put = chunked
      ? await this.http.request({endpoint: ep, method: 'PUT', url: location, headers: {...octets, 'content-length': '0'}, scopes, retries: false})
      : await this.http.request({endpoint: ep, method: 'PUT', url: location, headers: octets, body: open, contentLength: desc.size, scopes, retries: false})
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
  async putManifest(repo: Reference, tagOrDigest: string, raw: RawManifest): Promise<Digest> {
    const ep = upstreamEndpoint(repo.registry)
    const name = `${repositoryName(repo)}${isDigest(tagOrDigest) ? '@' : ':'}${tagOrDigest}`
    if (isDigest(tagOrDigest) && tagOrDigest !== raw.digest) {
      throw new KubeferryError('DIGEST_MISMATCH', `manifest for ${name} has digest ${raw.digest}`, {hint: 'this is a bug in the caller: push a manifest under its own digest'})
    }
    const res = await this.http.request({endpoint: ep, method: 'PUT', path: `${repo.repository}/manifests/${tagOrDigest}`, headers: {'content-type': raw.mediaType}, body: raw.bytes, scopes: [push(repo.repository)]})
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await statusError(ep, res, `manifest ${name}`)
    await res.body.dump()
    const stored = header(res, 'docker-content-digest')
    if (stored && isDigest(stored) && stored !== raw.digest) {
      throw new KubeferryError('DIGEST_MISMATCH', `registry ${ep.label} stored manifest ${name} as ${stored}, expected ${raw.digest}`, {hint: 'the registry rewrote the manifest; it does not keep bytes as pushed'})
    }
    return raw.digest
  }

  async close(): Promise<void> {
    await this.transport.close()
  }

  // ---------------------------------------------------------------- mirrors

  /**
   * Run `fn` on each endpoint of `ref.registry` (mirrors first, then upstream) until one succeeds.
   * When all fail, the most telling error wins: anything the registry said (not found, denied,
   * corrupt) beats "unreachable", so an offline upstream does not hide the mirror's answer.
   */
  private async onPullEndpoints<T>(ref: Reference, fn: (ep: Endpoint) => Promise<T>): Promise<T> {
    const endpoints = pullEndpoints(ref.registry, this.mirrors)
    const errors: Array<{ep: Endpoint; error: KubeferryError}> = []
    for (const [i, ep] of endpoints.entries()) {
      try {
        return await fn(ep)
      } catch (error) {
        if (!(error instanceof KubeferryError)) throw error
        errors.push({ep, error})
        const next = endpoints[i + 1]
        if (next) this.log(error.code === 'NOT_FOUND' ? 'debug' : 'info', `${error.message}; trying ${next.label}`)
      }
    }
    const best = errors.find((e) => e.error.code !== 'NETWORK') ?? errors[0]
    if (errors.length === 1) throw best.error
    const others = errors.filter((e) => e !== best).map((e) => `${e.ep.label}: ${e.error.code === 'NETWORK' ? 'unreachable' : e.error.code.toLowerCase().replace(/_/g, ' ')}`)
    throw new KubeferryError(best.error.code, best.error.message, {hint: `${best.error.hint ? `${best.error.hint}; ` : ''}also tried ${others.join(', ')}`, cause: best.error.cause})
  }
}

function pull(repository: string): string {
  return repositoryScope(repository, ['pull'])
}

function push(repository: string): string {
  return repositoryScope(repository, ['pull', 'push'])
}

function target(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest'
}

function contentType(res: TransportResponse): string | undefined {
  const value = header(res, 'content-type')
  return value ? value.split(';')[0].trim().toLowerCase() : undefined
}

/** The manifest's media type: its own `mediaType` field, else a specific Content-Type, else inferred from its shape. */
function manifestMediaType(served: string | undefined, parsed: {mediaType?: unknown; manifests?: unknown; config?: unknown}): string {
  if (typeof parsed.mediaType === 'string' && parsed.mediaType !== '') return parsed.mediaType
  if (served && served !== 'application/json' && served !== 'application/octet-stream' && served !== 'text/plain') return served
  if (Array.isArray(parsed.manifests)) return MediaType.OciIndex
  if (parsed.config) return MediaType.OciManifest
  return served ?? ''
}

function schema1(name: string): KubeferryError {
  return new KubeferryError('UNSUPPORTED_MEDIA_TYPE', `${name} is a Docker schema 1 manifest, which kubeferry does not support`, {
    hint: 'schema 1 is deprecated and unsafe; re-push the image with a current docker, buildah or skopeo to convert it',
  })
}

function digestMismatch(ep: Endpoint, ref: Reference, actual: string): KubeferryError {
  return new KubeferryError('DIGEST_MISMATCH', `manifest of ${formatReference(ref)} from ${ep.label} has digest ${actual}, expected ${ref.digest}`, {
    hint: 'the registry served different content than requested; nothing was kept',
  })
}

async function readLimited(res: TransportResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(header(res, 'content-length'))
  if (Number.isFinite(declared) && declared > limit) {
    res.body.destroy()
    throw new KubeferryError('REGISTRY_ERROR', `${what} is ${declared} bytes, more than the ${limit} allowed`)
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) {
      res.body.destroy()
      throw new KubeferryError('REGISTRY_ERROR', `${what} is more than the ${limit} bytes allowed`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

function uploadLocation(res: TransportResponse, what: string): URL {
  const location = header(res, 'location')
  if (!location) throw new KubeferryError('REGISTRY_ERROR', `${what}: the registry sent no upload Location`)
  return new URL(location, res.url)
}

/** The `rel="next"` target of a Link header, resolved against the page's URL. */
export function nextLink(link: string | undefined, base: URL): URL | undefined {
  if (!link) return undefined
  for (const part of link.split(',')) {
    const m = /<([^>]*)>\s*;(.*)$/.exec(part.trim())
    if (m && /rel="?next"?/i.test(m[2])) return new URL(m[1], base)
  }
  return undefined
}

/** Where a 206 answer's body starts in the blob (Content-Range `bytes N-…`); -1 when it does not say. */
function rangeStart(res: TransportResponse): number {
  const start = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '')
  return start ? Number(start[1]) : -1
}

function drained(stream: DigestVerifier): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done)
      stream.off('close', done)
      resolve()
    }
    stream.on('drain', done)
    stream.on('close', done)
  })
}
