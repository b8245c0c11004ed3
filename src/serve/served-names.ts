/**
 * What a `kubeferry serve` of some bundles answers, described for `kubeferry config --serve`: per upstream registry
 * the containerd `hosts.toml` facts (server, mirror host, override_path) and the repositories served, so config can
 * render `certs.d/<upstream>/hosts.toml` pointing registry.k8s.io, docker.io, … at the serving host.
 *
 * Serve answers every image at its upstream path (`pause`, `coredns/coredns`, `library/busybox`), so a mirror needs
 * no `override_path`; with a prefix the same images are ALSO at `<prefix>/…`, reachable with
 * `[host."http://HOST:PORT/v2/<prefix>"] override_path = true` (`pathPrefix`).
 */
import {normalizePrefix, targetRepositories, type UpstreamRepository} from '../registry/names.js'

export interface ServedMirror {
  /** Upstream registry host as in image names: `registry.k8s.io`, `docker.io`. */
  upstream: string
  /** containerd's `server` for it: `https://registry.k8s.io`, docker.io → `https://registry-1.docker.io`. */
  server: string
  /** The serving host as a hosts.toml `[host."…"]` key: `http://10.0.0.5:5000` (or `…/v2/<prefix>` with override). */
  host: string
  overridePath: boolean
  capabilities: ['pull', 'resolve']
  /** Repository names the mirror answers for this upstream (the path the node asks for). */
  repositories: string[]
}

export interface ServedNamesOptions {
  /** How nodes reach the server, e.g. `http://10.0.0.5:5000` or `https://mirror.local:5000`. */
  url: string
  /** Describe the `<prefix>/…` names (override_path) instead of the upstream paths. */
  prefix?: string
}

/** Upstream registry → containerd `server` URL (docker.io's API lives at registry-1.docker.io). */
export function upstreamServer(registry: string): string {
  return registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`
}

export function describeServedMirrors(images: UpstreamRepository[], options: ServedNamesOptions): ServedMirror[] {
  const prefix = normalizePrefix(options.prefix)
  const base = options.url.replace(/\/+$/, '')
  const byRegistry = new Map<string, Set<string>>()
  for (const image of images) {
    const names = byRegistry.get(image.registry) ?? new Set<string>()
    for (const name of targetRepositories(image, prefix ? {prefix} : {})) names.add(name)
    byRegistry.set(image.registry, names)
  }
  return [...byRegistry.keys()].sort().map((upstream) => ({
    upstream,
    server: upstreamServer(upstream),
    host: prefix ? `${base}/v2/${prefix}` : base,
    overridePath: Boolean(prefix),
    capabilities: ['pull', 'resolve'],
    repositories: [...byRegistry.get(upstream)!].sort(),
  }))
}
