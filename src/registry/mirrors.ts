import {KubeferryError} from '../oci/errors.js'
import {apiHost} from '../oci/reference.js'

/**
 * One place to send registry API calls for a repository. `host` (host[:port]) keys credentials and
 * tokens; `prefix` is a repository namespace on a mirror (`http://mirror:5000/k8s` serves
 * `registry.k8s.io/pause` as `k8s/pause`). `scheme` is undefined when it is to be probed (https,
 * then http for insecure or loopback hosts).
 */
export interface Endpoint {
  host: string
  scheme?: 'https' | 'http'
  prefix: string
  mirror: boolean
  /** For messages: `registry.k8s.io` or `mirror http://127.0.0.1:5000 (for registry.k8s.io)`. */
  label: string
}

/** Parse a mirror base URL (`http://127.0.0.1:5000`, `https://mirror.corp/k8s`, `mirror.corp:5000`). */
export function parseMirror(upstream: string, base: string): Endpoint {
  const text = base.trim()
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new KubeferryError('INVALID_ARGUMENT', `invalid mirror URL "${base}" for ${upstream}`, {hint: 'use --mirror registry.k8s.io=http://127.0.0.1:5000 (scheme optional, path = repository prefix)'})
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new KubeferryError('INVALID_ARGUMENT', `invalid mirror URL "${base}" for ${upstream}: only http:// and https:// are supported`)
  }
  if (url.username || url.password) {
    throw new KubeferryError('INVALID_ARGUMENT', `mirror URL for ${upstream} must not contain credentials`, {hint: 'use docker login, --username/--password-stdin or a credential helper instead'})
  }
  const prefix = url.pathname.replace(/^\/+|\/+$/g, '')
  // An explicit scheme is the operator's choice (like containerd's hosts.toml `[host."http://…"]`).
  const explicitScheme = /^[a-z]+:\/\//i.test(text) ? (url.protocol === 'http:' ? 'http' : 'https') : undefined
  const shown = `${url.protocol}//${url.host}${prefix ? `/${prefix}` : ''}`
  return {host: url.host, scheme: explicitScheme, prefix, mirror: true, label: `mirror ${shown} (for ${upstream})`}
}

/** Where to fetch `registry`'s content from: its mirrors in the order given, then the registry itself. */
export function pullEndpoints(registry: string, mirrors: Record<string, string[]> | undefined): Endpoint[] {
  const list = (mirrors?.[registry] ?? []).map((m) => parseMirror(registry, m))
  list.push(upstreamEndpoint(registry))
  return list
}

export function upstreamEndpoint(registry: string): Endpoint {
  return {host: apiHost(registry), prefix: '', mirror: false, label: registry}
}

/** The repository path on an endpoint (the mirror's prefix prepended). */
export function endpointRepository(endpoint: Endpoint, repository: string): string {
  return endpoint.prefix ? `${endpoint.prefix}/${repository}` : repository
}
