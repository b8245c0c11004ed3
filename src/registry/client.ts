import type {Hash} from 'node:crypto'
import type {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'
import {DigestVerifier, isDigest, sha256Digest, type Digest} from '../oci/digest.js'
import {MANIFEST_ACCEPT, SCHEMA1_MEDIA_TYPES, isImageManifestMediaType, isIndexMediaType} from '../oci/media-types.js'
import type {ImageIndex, ImageManifest, ParsedManifest, RawManifest} from '../oci/types.js'
import {defaultCredentialProvider, type CredentialProvider, type LogFn} from './auth/credentials.js'
import {onPullEndpoints, pullScope as pull} from './endpoints.js'
import {header, networkError, RegistryHttp, statusError} from './http.js'
import {contentType, digestMismatch, manifestMediaType, readLimited, schema1} from './manifest-response.js'
import {endpointRepository, pullEndpoints, type Endpoint} from './mirrors.js'
import {formatReference, repositoryName, type Reference} from '../oci/reference.js'
import {feed, rangeStart} from './blob-response.js'
import {backoffDelay, isRetryableNetworkError, retryPolicy, sleep, type RetryOptions} from './retry.js'
import {listTags} from './tags.js'
import {abandonBody, Transport, type TransportResponse} from './transport.js'
import {blobExists, mountBlob, putManifest, uploadBlob, type BlobDescriptor, type UploadContext} from './upload.js'

export type {CredentialProvider, Credential} from './auth/credentials.js'
export {defaultCredentialProvider} from './auth/credentials.js'
export type {BlobDescriptor} from './upload.js'
export {nextLink} from './tags.js'

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
  /** Also read by referrers.ts (artifact lookups on the same endpoints, auth and retries). */
  readonly http: RegistryHttp
  readonly mirrors: Record<string, string[]>
  readonly log: LogFn
  private readonly uploads: UploadContext

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
    this.uploads = {http: this.http, retry: this.transport.retry, mirrors: this.mirrors, log: this.log}
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

  async fetchManifest(ep: Endpoint, ref: Reference): Promise<ParsedManifest> {
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
    return verifier // its startsAt is the offset it continues from (0 for a whole blob)
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
    const stop = () => abandonBody(res)
    out.once('close', stop)
    try {
      for (;;) {
        const before = delivered
        try {
          await feed(res.body as Readable, out, (chunk) => {
            let data = chunk
            if (skip > 0) {
              const drop = Math.min(skip, data.length)
              skip -= drop
              data = data.subarray(drop)
              if (data.length === 0) return undefined
            }
            delivered += data.length
            onProgress?.(data.length)
            return data
          })
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
    return blobExists(this.uploads, repo, digest)
  }

  /** Every tag of the repository, following `Link: <…>; rel="next"` pages. */
  listTags(repo: Reference): Promise<string[]> {
    return this.onPullEndpoints(repo, (ep) => listTags(this.http, ep, repo))
  }

  // ---------------------------------------------------------------- push primitives

  /** Cross-repository mount: true when the registry mounted it (201), false when it wants an upload. */
  mountBlob(repo: Reference, digest: Digest, fromRepository: string): Promise<boolean> {
    return mountBlob(this.uploads, repo, digest, fromRepository)
  }

  /** Upload one blob (monolithic, else chunked); each retry reopens the stream with `open`. */
  uploadBlob(repo: Reference, desc: BlobDescriptor, open: () => Promise<Readable>): Promise<void> {
    return uploadBlob(this.uploads, repo, desc, open)
  }

  /** Store manifest bytes exactly as given, under a tag or its digest; returns the digest. */
  putManifest(repo: Reference, tagOrDigest: string, raw: RawManifest): Promise<Digest> {
    return putManifest(this.uploads, repo, tagOrDigest, raw)
  }

  async close(): Promise<void> {
    await this.transport.close()
  }

  // ---------------------------------------------------------------- mirrors

  /** `fn` on the mirrors of `ref.registry`, then its upstream, until one answers (see endpoints.ts). */
  private onPullEndpoints<T>(ref: Reference, fn: (ep: Endpoint) => Promise<T>): Promise<T> {
    return onPullEndpoints(ref, this.mirrors, this.log, fn)
  }
}

function target(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest'
}
