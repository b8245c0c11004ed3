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
import {readLimited} from './manifest-response.js'
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
export async function findTagged(client: RegistryClient, ref: Reference, tag: string): Promise<RawManifest | undefined> {
  const tagged: Reference = {registry: ref.registry, repository: ref.repository, tag}
  return (await firstAnswer(client, tagged, async (ep) => ((await tagExists(client, ep, tagged)) ? client.fetchManifest(ep, tagged) : undefined)))?.raw
}

async function tagExists(client: RegistryClient, ep: Endpoint, ref: Reference): Promise<boolean> {
  const repo = endpointRepository(ep, ref.repository)
  const res = await client.http.request({endpoint: ep, method: 'HEAD', path: `${repo}/manifests/${ref.tag}`, headers: {accept: MANIFEST_ACCEPT.join(', ')}, scopes: [pullScope(repo)]})
  await res.body.dump()
  if (res.status === 404) return false
  if (res.status !== 200) throw await statusError(ep, res, formatReference(ref))
  return true
}

/** The referrers API's answer on one endpoint: the descriptors, or 'unsupported' for a registry without the API. */
async function referrersApi(client: RegistryClient, ep: Endpoint, ref: Reference, digest: Digest): Promise<Descriptor[] | 'unsupported'> {
  const repo = endpointRepository(ep, ref.repository)
  const what = `referrers of ${repositoryName(ref)}@${digest}`
  const res = await client.http.request({endpoint: ep, method: 'GET', path: `${repo}/referrers/${digest}`, headers: {accept: MediaType.OciIndex}, scopes: [pullScope(repo)]})
  if (NO_REFERRERS_API.has(res.status)) {
    await res.body.dump()
    return 'unsupported'
  }
  if (res.status !== 200) throw await statusError(ep, res, what)
  return listedReferrers(await readLimited(res, MAX_REFERRERS_BYTES, what), `${what} from ${ep.label}`)
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
export async function findReferrers(client: RegistryClient, ref: Reference, digest: Digest): Promise<Descriptor[]> {
  if (!isDigest(digest)) throw new KubeferryError('INTERNAL', `referrers of ${formatReference(ref)}: ${digest} is not a digest`)
  const answer = await firstAnswer(client, ref, (ep) => referrersApi(client, ep, ref, digest))
  if (answer !== undefined && answer !== 'unsupported') return answer
  const index = await findTagged(client, ref, digestTag(digest))
  // A tag of that name holding something other than an index is not the tag schema's: no referrers.
  if (!index || !isIndexMediaType(index.mediaType)) return []
  return listedReferrers(index.bytes, `referrers tag ${digestTag(digest)} of ${repositoryName(ref)}`)
}

/**
 * push: make `desc` (a manifest with `subject`, already stored) a listed referrer of `subject` in `repo`. A registry
 * with the referrers API lists it by itself ('api'); otherwise the referrers tag schema index (`sha256-<hex>`) gets
 * it added, keeping what it already lists ('tag'), unless it is listed there already ('present').
 */
export async function addReferrer(client: RegistryClient, repo: Reference, subject: Digest, desc: Descriptor): Promise<'api' | 'tag' | 'present'> {
  const ep = upstreamEndpoint(repo.registry)
  if ((await referrersApi(client, ep, repo, subject)) !== 'unsupported') return 'api'
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
