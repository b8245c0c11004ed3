/** The tag list of a repository (`/tags/list`), page after page. */
import {repositoryName, type Reference} from '../oci/reference.js'
import {pullScope} from './endpoints.js'
import {header, type RegistryHttp} from './http.js'
import {readLimited} from './manifest-response.js'
import {endpointRepository, type Endpoint} from './mirrors.js'
import {statusError} from './errors.js'
import type {TransportResponse} from './transport.js'

/** Every tag of the repository on one endpoint, following `Link: <…>; rel="next"` pages. */
export async function listTags(http: RegistryHttp, ep: Endpoint, repo: Reference): Promise<string[]> {
  const path = endpointRepository(ep, repo.repository)
  const tags: string[] = []
  let url: URL | undefined = new URL(`${path}/tags/list`, await http.baseUrl(ep))
  for (let page = 0; url && page < 10_000; page++) {
    const res: TransportResponse = await http.request({endpoint: ep, method: 'GET', url, scopes: [pullScope(path)]})
    if (res.status !== 200) throw await statusError(ep, res, `tags of ${repositoryName(repo)}`, `repository ${repositoryName(repo)} not found in ${ep.mirror ? ep.label : `registry ${ep.label}`}`)
    const json = JSON.parse((await readLimited(res, 64 * 1024 * 1024, `tag list of ${repositoryName(repo)}`)).toString('utf8')) as {tags?: unknown}
    if (Array.isArray(json.tags)) tags.push(...json.tags.filter((t): t is string => typeof t === 'string'))
    url = nextLink(header(res, 'link'), res.url)
  }
  return tags
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
