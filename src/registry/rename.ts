/**
 * The destination side of the name rules: parse `REGISTRY[/PREFIX]`, and turn a bundle's image names into the
 * references `push` writes (and `config` points nodes and kubeadm at). The per-repository rules themselves live in
 * src/serve/names.ts, shared with `serve`, so both agree on where an upstream image lives.
 */
import {KubeferryError} from '../oci/errors.js'
import {isCorednsRepository, normalizePrefix, parseMapRule, targetRepositories, type NameRules, type UpstreamRepository} from './names.js'
import {DOCKER_HUB, parseReference} from '../oci/reference.js'

export {isCorednsRepository, mapRepository, normalizePrefix, parseMapRule, targetRepositories} from './names.js'
export type {NameRules, UpstreamRepository} from './names.js'

/** Where images go: a registry host and an optional repository prefix inside it. */
export interface PushDestination {
  /** host[:port], e.g. `registry.corp:5000`. */
  registry: string
  /** `k8s`, `team/k8s`, or '' for the registry root. */
  prefix: string
}

const HOST_RE = /^(?:\[[0-9a-fA-F:]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::\d{1,5})?$/

function invalidDestination(text: string, why: string): KubeferryError {
  return new KubeferryError('INVALID_ARGUMENT', `invalid registry "${text}": ${why}`, {
    hint: 'use REGISTRY[/PREFIX] with a host (and port) first, e.g. registry.corp:5000/k8s or localhost:5000',
  })
}

/** Parse `registry.corp:5000/k8s` (a scheme such as `https://` is accepted and dropped; TLS is chosen by flags). */
export function parseDestination(input: string): PushDestination {
  const text = input.trim().replace(/^(?:https?|docker):\/\//i, '')
  if (text === '') throw invalidDestination(input, 'empty')
  if (/[\s?#@]/.test(text)) throw invalidDestination(input, 'contains whitespace, ?, # or @')
  const slash = text.indexOf('/')
  const host = slash < 0 ? text : text.slice(0, slash)
  const rest = slash < 0 ? '' : text.slice(slash + 1)
  if (!HOST_RE.test(host)) throw invalidDestination(input, `"${host}" is not a host[:port]`)
  // A bare word (`k8s/pause`) would be read by docker as a Docker Hub repository: insist on a real host.
  if (!host.includes('.') && !host.includes(':') && host !== 'localhost') {
    throw invalidDestination(input, `"${host}" does not look like a registry host (no dot, no port, not localhost)`)
  }
  if (host === DOCKER_HUB || host === 'index.docker.io' || host === 'registry-1.docker.io') {
    throw invalidDestination(input, 'pushing to Docker Hub is not what kubeferry push is for')
  }
  if (rest !== '' && /\/\/|^\/|\/$/.test(rest)) throw invalidDestination(input, 'empty path component in the prefix')
  let prefix: string
  try {
    prefix = normalizePrefix(rest)
  } catch {
    throw invalidDestination(input, `invalid repository prefix "${rest}" (lowercase letters, digits, . _ - separated by /)`)
  }
  return {registry: host.toLowerCase(), prefix}
}

export function formatDestination(dest: PushDestination): string {
  return dest.prefix ? `${dest.registry}/${dest.prefix}` : dest.registry
}

/** Name-rule flags as commands receive them. */
export interface RenameFlags {
  flatten?: boolean
  map?: string[]
  'no-coredns-alias'?: boolean
}

export function nameRulesFrom(dest: PushDestination, flags: RenameFlags): NameRules {
  return {
    prefix: dest.prefix,
    flatten: flags.flatten ?? false,
    maps: (flags.map ?? []).map((m) => normaliseMap(parseMapRule(m))),
    corednsAlias: !flags['no-coredns-alias'],
  }
}

/** FROM may be written like a reference (`busybox`, `docker.io/busybox`): normalise it as docker does. */
function normaliseMap(rule: {from: string; to: string}): {from: string; to: string} {
  try {
    const ref = parseReference(rule.from, {defaultTag: false})
    if (!ref.tag && !ref.digest) return {from: `${ref.registry}/${ref.repository}`, to: rule.to}
  } catch {
    // a prefix such as `registry.k8s.io` alone is not a reference; keep it as written
  }
  return rule
}

/** One image of a bundle and the repositories it is placed at. */
export interface NamedTarget {
  source: UpstreamRepository & {tag?: string; name: string}
  /** Destination repositories (main first, then aliases), without the registry host. */
  repositories: string[]
  /** True when repositories[i > 0] are kubeadm's CoreDNS alias. */
  alias: boolean
}

/**
 * Destination repositories of every image, refusing two different upstream repositories that would land on the
 * same destination name with the same tag (e.g. `--flatten` of `docker.io/x/app` and `quay.io/y/app`).
 */
export function planNames(images: Array<UpstreamRepository & {tag?: string; name: string; digest: string}>, rules: NameRules): NamedTarget[] {
  const seen = new Map<string, {name: string; digest: string}>()
  const out: NamedTarget[] = []
  for (const image of images) {
    const repositories = targetRepositories(image, rules)
    for (const repo of repositories) {
      const key = `${repo}:${image.tag ?? image.digest}`
      const other = seen.get(key)
      if (other && other.digest !== image.digest) {
        throw new KubeferryError('CONFLICT', `${other.name} and ${image.name} would both be pushed as ${key}`, {
          hint: 'add a --map FROM=TO rule for one of them, or push without --flatten',
        })
      }
      seen.set(key, {name: image.name, digest: image.digest})
    }
    out.push({source: image, repositories, alias: repositories.length > 1 && isCorednsRepository(image)})
  }
  return out
}
