/**
 * What create learns once about each endpoint and repository, so that the artifact lookups (referrers.ts) do not ask
 * the same kind of question five times per image and platform:
 * - **digest tags**: one `tags/list` of a repository tells which `sha256-<hex>[.sig|.att|.sbom]` tags exist, so an
 *   absent tag (nearly all of them) costs no HEAD. Only a short list is used: one page within LIST_BYTES (a copy on an
 *   internal mirror holds a few images). A longer list (registry.k8s.io's repositories hold thousands of tags), a
 *   refused one (ECR, say, can grant pulls without ListImages) or a failed one is dropped unread, and those tags are
 *   asked one by one as before. The list is read when the first image of a repository is asked for, beside planning.
 *   Never through a mirror: a pull-through cache may list only what it has cached, while asking it for a tag makes it
 *   fetch that tag from upstream (a mirror's "no such tag" is final, see referrers.ts), so its list cannot stand in
 *   for the question. A registry reached directly lists what it holds.
 * - **the referrers API**: a registry that has it never answers 404, one without it always does (OCI distribution
 *   spec 1.1). The first answer of an endpoint is taken for all: while it is awaited the others wait, then a registry
 *   without the API is no longer asked (the referrers tag schema is looked up directly).
 * Only for one run of create: a tag pushed meanwhile is not seen (the run's answers would not change either).
 */
import {repositoryName, type Reference} from '../oci/reference.js'
import type {RegistryClient} from './client.js'
import {pullScope} from './endpoints.js'
import {header} from './http.js'
import {readLimited} from './manifest-response.js'
import {endpointRepository, pullEndpoints, type Endpoint} from './mirrors.js'
import {Limiter} from '../util/limiter.js'

/** A tag list longer than this is not read: the tags are asked one by one (see above). */
export const LIST_BYTES = 64 * 1024

/**
 * Tag lists read at once: a set of 200 images in 200 repositories would otherwise open 200 connections together
 * (file handles: test/load-tests); planning asks 16 manifests at a time beside them.
 */
const LISTS_AT_ONCE = 8

export class ArtifactIndex {
  private readonly lists = new Map<string, Promise<Set<string> | undefined>>()
  private readonly referrersApi = new Map<string, Promise<boolean | undefined>>()
  private readonly limiter = new Limiter(LISTS_AT_ONCE)

  constructor(private readonly client: RegistryClient) {}

  /** Artifact lookups about `repo` will follow: read its tag list, when the registry is reached directly (see above). */
  expect(repo: Reference): void {
    const ep = pullEndpoints(repo.registry, this.client.mirrors)[0]
    if (ep.mirror) return
    const key = keyOf(ep, repo)
    if (!this.lists.has(key)) this.lists.set(key, this.limiter.run(() => this.digestTags(ep, repo)))
  }

  /**
   * Whether `tag` exists in `repo` on `ep` by its tag list: undefined when there is no usable list (ask the registry).
   * Only lists that `expect` started are consulted.
   */
  async hasTag(ep: Endpoint, repo: Reference, tag: string): Promise<boolean | undefined> {
    const tags = await this.lists.get(keyOf(ep, repo))
    return tags?.has(tag)
  }

  /**
   * Ask the referrers API through `ask` (true: the endpoint has it; false: it has not; undefined: no answer, e.g. a
   * network failure) unless the endpoint already said it has no API: then `ask` is not called and false is returned.
   * The first question of an endpoint goes alone; the others wait for its answer.
   */
  async referrersApiOn<T>(ep: Endpoint, ask: () => Promise<T>, supported: (answer: T) => boolean): Promise<T | 'unsupported'> {
    const key = endpointKey(ep)
    const known = this.referrersApi.get(key)
    if (known && (await known) === false) return 'unsupported'
    if (known) return ask()
    let settle!: (value: boolean | undefined) => void
    this.referrersApi.set(key, new Promise((resolve) => (settle = resolve)))
    try {
      const answer = await ask()
      settle(supported(answer))
      return answer
    } catch (error) {
      settle(undefined)
      this.referrersApi.delete(key) // no answer: the next question asks again
      throw error
    }
  }

  /** The tags of one short tag list (all of them: a digest tag may name any algorithm), or undefined. Never throws. */
  private async digestTags(ep: Endpoint, repo: Reference): Promise<Set<string> | undefined> {
    const path = endpointRepository(ep, repo.repository)
    try {
      const res = await this.client.http.request({endpoint: ep, method: 'GET', path: `${path}/tags/list`, scopes: [pullScope(path)]})
      if (res.status !== 200 || header(res, 'link') !== undefined) {
        await res.body.dump().catch(() => undefined) // reads a little, else closes the connection
        return this.unused(repo, ep, res.status === 200 ? 'more than one page' : `status ${res.status}`)
      }
      // Longer than LIST_BYTES (declared or read): readLimited throws, and the list is not used (below).
      const bytes = await readLimited(res, LIST_BYTES, `tag list of ${repositoryName(repo)}`)
      const json = JSON.parse(bytes.toString('utf8')) as {tags?: unknown}
      if (!Array.isArray(json.tags)) return this.unused(repo, ep, 'no tags array')
      return new Set(json.tags.filter((t): t is string => typeof t === 'string'))
    } catch (error) {
      return this.unused(repo, ep, (error as Error).message)
    }
  }

  private unused(repo: Reference, ep: Endpoint, why: string): undefined {
    this.client.log('debug', `tag list of ${repositoryName(repo)} on ${ep.label} not used (${why}): its artifact tags are asked one by one`)
    return undefined
  }
}

function endpointKey(ep: Endpoint): string {
  return `${ep.scheme ?? ''}://${ep.host}/${ep.prefix}`
}

function keyOf(ep: Endpoint, repo: Reference): string {
  return `${endpointKey(ep)}|${repo.repository}`
}
