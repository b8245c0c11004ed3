/**
 * Looking up the publishers' artifacts about an image (issue 19): cosign's tags (`sha256-<hex>.sig|.att|.sbom`) and
 * the OCI 1.1 referrers of a digest (`GET /v2/<name>/referrers/<digest>`, else the referrers tag schema: an index at
 * tag `sha256-<hex>`, which clients maintain on registries without the API, such as distribution 2.8).
 *
 * Where: the image's endpoints in order (mirrors, then the registry), but the first endpoint that ANSWERS decides: a
 * mirror saying "no such tag" is final, and only an endpoint that cannot be reached or fails (5xx) passes the question
 * on. A pull-through mirror asks upstream itself; a copy holds what was copied to it; and a connected host that builds
 * through a mirror usually cannot reach the registry at all, so asking it for every absent tag would only add timeouts.
 */
import {KubeferryError} from '../oci/errors.js'
import {digestTag} from '../oci/artifact-tags.js'
import {isDigest, sha256Digest, type Digest} from '../oci/digest.js'
import {descriptorProblem} from '../oci/manifest.js'
import {MANIFEST_ACCEPT, MediaType, isIndexMediaType} from '../oci/media-types.js'
import {formatReference, repositoryName, type Reference} from '../oci/reference.js'
import type {Descriptor, ImageIndex, RawManifest} from '../oci/types.js'
import type {RegistryClient} from './client.js'
import {pullScope} from './endpoints.js'
import {isTransientRegistryError, statusError} from './errors.js'
import {header} from './http.js'
import {readLimited} from './manifest-response.js'
import {nextLink} from './tags.js'
import type {TransportResponse} from './transport.js'
import type {ArtifactIndex} from './artifact-index.js'
import {endpointRepository, pullEndpoints, upstreamEndpoint, type Endpoint} from './mirrors.js'

/** Referrers indexes are manifests: the same bound. */
const MAX_REFERRERS_BYTES = 4 * 1024 * 1024

/** Statuses of a registry without the referrers API (the spec says 404; others answer 400, 405 or 501). */
const NO_REFERRERS_API = new Set([400, 404, 405, 501])

/**
 * `fn` on the endpoints of `ref.registry` until one answers: its value, or undefined when it said NOT_FOUND. Network
 * failures and 5xx move on to the next endpoint; any other refusal (denied, unauthorized) is thrown.
 */
async function firstAnswer<T>(client: RegistryClient, ref: Reference, fn: (ep: Endpoint) => Promise<T>): Promise<T | undefined> {
  let last: KubeferryError | undefined
  for (const ep of pullEndpoints(ref.registry, client.mirrors)) {
    try {
      return await fn(ep)
    } catch (error) {
      if (!(error instanceof KubeferryError)) throw error
      if (error.code === 'NOT_FOUND') return undefined
      if (error.code !== 'NETWORK' && !isTransientRegistryError(error)) throw error
      client.log('debug', `${error.message}; asking the next endpoint`)
      last = error
    }
  }
  throw last!
}

/**
 * The manifest under `tag` in `ref`'s repository, undefined when the first endpoint that answers has no such tag.
 * HEAD first: most images have no such tag, and Docker Hub counts a manifest GET (not a HEAD) against pull limits.
 */
export async function findTagged(client: RegistryClient, ref: Reference, tag: string, index?: ArtifactIndex): Promise<RawManifest | undefined> {
  const tagged: Reference = {registry: ref.registry, repository: ref.repository, tag}
  return (
    await firstAnswer(client, tagged, async (ep) => {
      // The repository's tag list (artifact-index.ts), when there is one, answers for the HEAD.
      const listed = await index?.hasTag(ep, ref, tag)
      return (listed ?? (await tagExists(client, ep, tagged))) ? client.fetchManifest(ep, tagged) : undefined
    })
  )?.raw
}

async function tagExists(client: RegistryClient, ep: Endpoint, ref: Reference): Promise<boolean> {
  const repo = endpointRepository(ep, ref.repository)
  const res = await client.http.request({endpoint: ep, method: 'HEAD', path: `${repo}/manifests/${ref.tag}`, headers: {accept: MANIFEST_ACCEPT.join(', ')}, scopes: [pullScope(repo)]})
  await res.body.dump()
  if (res.status === 404) return false
  if (res.status !== 200) throw await statusError(ep, res, formatReference(ref))
  return true
}

/**
 * Bounds on one digest's referrers: a registry may page the list (`Link: <…>; rel="next"`, as tags/list), and a
 * hostile or broken one could loop its links or list without end. Each referrer is a manifest to read and carry, so
 * past these what was read is kept and the operator told (a truncated list can only make a policy check refuse).
 */
export const REFERRER_LIMITS = {pages: 50, descriptors: 1000}

/** Where a referrers lookup tells the operator that a bound cut a list short (create: the plan's warnings). */
export type Warn = (message: string) => void

/**
 * The referrers API's answer on one endpoint: the descriptors of every page (each digest once, within
 * REFERRER_LIMITS), or 'unsupported' for a registry without the API. `firstPageOnly`: push only asks whether the API
 * is there.
 */
async function referrersApi(client: RegistryClient, ep: Endpoint, ref: Reference, digest: Digest, options: {warn?: Warn; firstPageOnly?: boolean} = {}): Promise<Descriptor[] | 'unsupported'> {
  const repo = endpointRepository(ep, ref.repository)
  const what = `referrers of ${repositoryName(ref)}@${digest}`
  let url: URL | undefined = new URL(`${repo}/referrers/${digest}`, await client.http.baseUrl(ep))
  const seen = new Set<string>()
  const byDigest = new Map<string, Descriptor>()
  for (let page = 1; url; page++) {
    if (page > REFERRER_LIMITS.pages) {
      options.warn?.(`${what} from ${ep.label}: the list goes on past ${REFERRER_LIMITS.pages} pages; kept the ${byDigest.size} referrers of those (a list this long is unusual: check the registry)`)
      break
    }
    seen.add(url.href)
    const res: TransportResponse = await client.http.request({endpoint: ep, method: 'GET', url, headers: {accept: MediaType.OciIndex}, scopes: [pullScope(repo)]})
    if (page === 1 && NO_REFERRERS_API.has(res.status)) {
      await res.body.dump()
      return 'unsupported'
    }
    if (res.status !== 200) {
      const error = await statusError(ep, res, page === 1 ? what : `${what} (page ${page})`)
      // A later page gone is a broken list, not "no referrers" (which would drop the pages read): say so.
      if (page > 1) throw new KubeferryError('REGISTRY_ERROR', error.message, {hint: 'the registry broke off its referrers list; retry, or pass --no-signatures to build without the artifacts', cause: error})
      throw error
    }
    const listed = listedReferrers(await readLimited(res, MAX_REFERRERS_BYTES, what), `${what} from ${ep.label}`)
    if (options.firstPageOnly) return listed
    if (!keepWithin(byDigest, listed, (n) => options.warn?.(`${what} from ${ep.label}: more than ${REFERRER_LIMITS.descriptors} referrers listed; kept the first ${n} (a list this long is unusual: check the registry)`))) break
    url = nextLink(header(res, 'link'), res.url)
    if (url && seen.has(url.href)) {
      options.warn?.(`${what} from ${ep.label}: its next-page link leads back to a page already read (${url.pathname}${url.search}); stopped there with ${byDigest.size} referrers`)
      break
    }
  }
  return [...byDigest.values()]
}

/** Add `listed` to `kept` (each digest once) up to REFERRER_LIMITS.descriptors; false (after `full`) when the bound cut it. */
function keepWithin(kept: Map<string, Descriptor>, listed: Descriptor[], full: (kept: number) => void): boolean {
  for (const desc of listed) {
    if (kept.has(desc.digest)) continue
    if (kept.size >= REFERRER_LIMITS.descriptors) {
      full(kept.size)
      return false
    }
    kept.set(desc.digest, desc)
  }
  return true
}

/** The descriptors of a referrers index (the API's answer or the tag schema's index), each checked. */
function listedReferrers(bytes: Buffer, what: string): Descriptor[] {
  let index: Partial<ImageIndex>
  try {
    index = JSON.parse(bytes.toString('utf8')) as Partial<ImageIndex>
  } catch {
    throw new KubeferryError('REGISTRY_ERROR', `${what} is not valid JSON`, {hint: 'the registry served a broken referrers list; pass --no-signatures to build without the artifacts'})
  }
  if (!Array.isArray(index.manifests)) throw new KubeferryError('REGISTRY_ERROR', `${what} has no manifests list`, {hint: 'pass --no-signatures to build without the artifacts'})
  for (const desc of index.manifests) {
    const problem = descriptorProblem(desc, what)
    if (problem) throw new KubeferryError('REGISTRY_ERROR', problem.message, {hint: 'pass --no-signatures to build without the artifacts'})
  }
  return index.manifests
}

/** The OCI 1.1 referrers of `digest`: the referrers API where the registry has one, else the referrers tag schema. */
export async function findReferrers(client: RegistryClient, ref: Reference, digest: Digest, warn?: Warn, known?: ArtifactIndex): Promise<Descriptor[]> {
  if (!isDigest(digest)) throw new KubeferryError('INTERNAL', `referrers of ${formatReference(ref)}: ${digest} is not a digest`)
  const api = (ep: Endpoint): Promise<Descriptor[] | 'unsupported'> => referrersApi(client, ep, ref, digest, {warn})
  // With an ArtifactIndex, an endpoint that said it has no referrers API is not asked again (artifact-index.ts).
  const answer = await firstAnswer(client, ref, (ep) => (known ? known.referrersApiOn(ep, () => api(ep), (a) => a !== 'unsupported') : api(ep)))
  if (answer !== undefined && answer !== 'unsupported') return answer
  const index = await findTagged(client, ref, digestTag(digest), known)
  // A tag of that name holding something other than an index is not the tag schema's: no referrers.
  if (!index || !isIndexMediaType(index.mediaType)) return []
  const what = `referrers tag ${digestTag(digest)} of ${repositoryName(ref)}`
  const kept = new Map<string, Descriptor>()
  keepWithin(kept, listedReferrers(index.bytes, what), (n) => warn?.(`${what}: more than ${REFERRER_LIMITS.descriptors} referrers listed; kept the first ${n} (a list this long is unusual: check the registry)`))
  return [...kept.values()]
}

/**
 * push: make `desc` (a manifest with `subject`, already stored) a listed referrer of `subject` in `repo`. A registry
 * with the referrers API lists it by itself ('api'); otherwise the referrers tag schema index (`sha256-<hex>`) gets
 * it added, keeping what it already lists ('tag'), unless it is listed there already ('present').
 */
export async function addReferrer(client: RegistryClient, repo: Reference, subject: Digest, desc: Descriptor): Promise<'api' | 'tag' | 'present'> {
  const ep = upstreamEndpoint(repo.registry)
  if ((await referrersApi(client, ep, repo, subject, {firstPageOnly: true})) !== 'unsupported') return 'api'
  const tagged: Reference = {registry: repo.registry, repository: repo.repository, tag: digestTag(subject)}
  let listed: Descriptor[] = []
  try {
    const current = (await client.fetchManifest(ep, tagged)).raw
    if (isIndexMediaType(current.mediaType)) listed = listedReferrers(current.bytes, `referrers tag ${tagged.tag} of ${repositoryName(repo)}`)
  } catch (error) {
    if (!(error instanceof KubeferryError && error.code === 'NOT_FOUND')) throw error
  }
  if (listed.some((d) => d.digest === desc.digest)) return 'present'
  const bytes = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...listed, desc]}))
  await client.putManifest(repo, tagged.tag!, {bytes, mediaType: MediaType.OciIndex, digest: sha256Digest(bytes)})
  return 'tag'
}
