/**
 * Where an upstream image lives in a kubeferry-run registry. ONE rule set shared by `push` (which writes the names)
 * and `serve` (which answers them), so `kubeferry config` can point nodes at either without rewriting:
 *
 *  - default: the upstream repository path is kept under the prefix
 *    `registry.k8s.io/pause` → `<prefix>/pause`, `docker.io/library/busybox` → `<prefix>/library/busybox`;
 *  - `flatten`: only the last path component is kept (`registry.k8s.io/coredns/coredns` → `<prefix>/coredns`);
 *  - `maps`: explicit `FROM=TO` rules, FROM a full upstream repository (`registry.k8s.io/coredns/coredns`) or a
 *    path prefix of one ending at a `/` boundary (`registry.k8s.io/coredns`), TO the replacement path under the prefix;
 *  - kubeadm: with a custom `imageRepository` kubeadm asks for `<repo>/coredns:<tag>`, with the default for
 *    `registry.k8s.io/coredns/coredns:<tag>`, so CoreDNS gets the alias `<prefix>/coredns` too (`corednsAlias`).
 */
import {KubeferryError} from '../oci/errors.js'

export interface NameRules {
  /** Path under the registry, e.g. `k8s` or `team/k8s`; empty/undefined for the registry root. */
  prefix?: string
  flatten?: boolean
  maps?: Array<{from: string; to: string}>
  /** Also place `…/coredns/coredns` at `…/coredns` (kubeadm with a custom imageRepository). Default true. */
  corednsAlias?: boolean
}

export interface UpstreamRepository {
  /** `registry.k8s.io`, `docker.io`, … */
  registry: string
  /** `pause`, `coredns/coredns`, `library/busybox` */
  repository: string
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/

/** True for a valid distribution repository path (`a/b-c/d.e`). */
export function isRepositoryPath(path: string): boolean {
  return path.length > 0 && path.length <= 255 && path.split('/').every((c) => PATH_COMPONENT.test(c))
}

/** Normalise and check a prefix (`/k8s/` → `k8s`); throws INVALID_ARGUMENT for anything else. */
export function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '')
  if (trimmed === '') return ''
  if (!isRepositoryPath(trimmed)) {
    throw new KubeferryError('INVALID_ARGUMENT', `invalid repository prefix "${prefix}"`, {
      hint: 'use lowercase path components separated by /, e.g. k8s or platform/k8s',
    })
  }
  return trimmed
}

/** Parse `FROM=TO` map rules (from `--map`). */
export function parseMapRule(text: string): {from: string; to: string} {
  const eq = text.indexOf('=')
  const from = eq > 0 ? text.slice(0, eq).replace(/\/+$/, '') : ''
  const to = eq > 0 ? text.slice(eq + 1).replace(/^\/+|\/+$/g, '') : ''
  if (from === '' || !isRepositoryPath(to) || from.includes(':') && !/^[^/]+:\d+\//.test(from)) {
    throw new KubeferryError('INVALID_ARGUMENT', `invalid name map "${text}"`, {
      hint: 'use FROM=TO with FROM an upstream repository (registry.k8s.io/coredns/coredns) and TO a path (dns/coredns)',
    })
  }
  return {from, to}
}

function joinPath(prefix: string, path: string): string {
  return prefix === '' ? path : `${prefix}/${path}`
}

/** The main target repository of an upstream repository under `rules` (no aliases). */
export function mapRepository(source: UpstreamRepository, rules: NameRules = {}): string {
  const prefix = normalizePrefix(rules.prefix)
  const full = `${source.registry}/${source.repository}`
  for (const rule of rules.maps ?? []) {
    if (full === rule.from) return joinPath(prefix, rule.to)
    if (full.startsWith(`${rule.from}/`)) return joinPath(prefix, `${rule.to}/${full.slice(rule.from.length + 1)}`)
  }
  const path = rules.flatten ? source.repository.slice(source.repository.lastIndexOf('/') + 1) : source.repository
  return joinPath(prefix, path)
}

/** True for the CoreDNS image kubeadm knows by two names. */
export function isCorednsRepository(source: UpstreamRepository): boolean {
  return source.repository === 'coredns/coredns'
}

/**
 * Every repository an upstream image is placed at under `rules`: the mapped name first, then the kubeadm CoreDNS
 * alias when it differs.
 */
export function targetRepositories(source: UpstreamRepository, rules: NameRules = {}): string[] {
  const main = mapRepository(source, rules)
  const out = [main]
  if (rules.corednsAlias !== false && isCorednsRepository(source)) {
    const alias = joinPath(normalizePrefix(rules.prefix), 'coredns')
    if (alias !== main) out.push(alias)
  }
  return out
}
