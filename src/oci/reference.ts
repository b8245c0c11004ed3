import {KubeferryError} from './errors.js'
import {isDigest, type Digest} from './digest.js'

/**
 * An image reference normalised the way docker does it:
 * `pause` → `docker.io/library/pause:latest`, `index.docker.io/x` → `docker.io/library/x`.
 */
export interface Reference {
  /** Registry host as written (with port), `docker.io` for Docker Hub. */
  registry: string
  /** Repository path inside the registry, e.g. `library/pause`, `coredns/coredns`. */
  repository: string
  tag?: string
  digest?: Digest
}

export const DOCKER_HUB = 'docker.io'
// Docker rewrites only index.docker.io; registry-1.docker.io stays a name of its own (as in docker).
const LEGACY_HUB_NAMES = new Set(['index.docker.io'])
const MAX_NAME_LENGTH = 255

// Grammar from the distribution reference package (facts, rewritten).
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/
const IPV6 = /^\[[a-fA-F0-9:]+\]$/
const TAG = /^[\w][\w.-]{0,127}$/

function invalid(input: string, why: string): KubeferryError {
  return new KubeferryError('INVALID_REFERENCE', `invalid image reference "${input}": ${why}`, {
    hint: 'use the form [registry[:port]/]repository[:tag][@sha256:<digest>], e.g. registry.k8s.io/pause:3.10',
  })
}

function validDomain(domain: string): boolean {
  const colon = domain.lastIndexOf(':')
  let host = domain
  if (colon > -1 && !domain.endsWith(']')) {
    const port = domain.slice(colon + 1)
    if (!/^[0-9]+$/.test(port)) return false
    host = domain.slice(0, colon)
  }
  if (IPV6.test(host)) return true
  return host.split('.').every((c) => DOMAIN_COMPONENT.test(c))
}

/** Parse and normalise an image reference; throws KubeferryError('INVALID_REFERENCE') with the reason. */
export function parseReference(input: string, options: {defaultTag?: boolean} = {}): Reference {
  const text = input.trim()
  if (text === '') throw invalid(input, 'empty')
  if (/\s/.test(text)) throw invalid(input, 'contains whitespace')
  if (/^[a-f0-9]{64}$/.test(text)) throw invalid(input, 'a 64-character hexadecimal string is an image ID, not a repository name')

  let rest = text
  let digest: Digest | undefined
  const at = rest.indexOf('@')
  if (at > -1) {
    const d = rest.slice(at + 1)
    if (!d.startsWith('sha256:')) throw invalid(input, 'only sha256 digests are supported (…@sha256:<64 hex>)')
    if (!isDigest(d)) throw invalid(input, 'the digest must be sha256: followed by 64 lowercase hex characters')
    digest = d
    rest = rest.slice(0, at)
  }

  let tag: string | undefined
  const lastSlash = rest.lastIndexOf('/')
  const lastColon = rest.lastIndexOf(':')
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1)
    rest = rest.slice(0, lastColon)
    if (!TAG.test(tag)) throw invalid(input, `invalid tag "${tag}" (letters, digits, _ . - ; at most 128; not starting with . or -)`)
  }
  if (rest === '') throw invalid(input, 'missing repository name')

  let registry = DOCKER_HUB
  let repository = rest
  const firstSlash = rest.indexOf('/')
  if (firstSlash > -1) {
    const first = rest.slice(0, firstSlash)
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      registry = first
      repository = rest.slice(firstSlash + 1)
      if (!validDomain(registry)) throw invalid(input, `invalid registry host "${registry}"`)
    }
  }
  if (LEGACY_HUB_NAMES.has(registry)) registry = DOCKER_HUB
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`

  if (repository === '') throw invalid(input, 'missing repository name')
  if (repository !== repository.toLowerCase()) throw invalid(input, 'repository name must be lowercase')
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT.test(component)) throw invalid(input, `invalid repository path component "${component}"`)
  }
  const fullName = `${registry}/${repository}`
  if (fullName.length > MAX_NAME_LENGTH) throw invalid(input, `repository name longer than ${MAX_NAME_LENGTH} characters`)

  if (!tag && !digest && options.defaultTag !== false) tag = 'latest'
  return {registry, repository, ...(tag ? {tag} : {}), ...(digest ? {digest} : {})}
}

/** `registry/repository` (no tag or digest). */
export function repositoryName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`
}

/** Fully qualified string: `registry/repo[:tag][@digest]`. */
export function formatReference(ref: Reference): string {
  return `${repositoryName(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}

/** Docker's short form (`pause:3.10` for docker.io/library/pause:3.10). */
export function familiarReference(ref: Reference): string {
  let name = repositoryName(ref)
  if (ref.registry === DOCKER_HUB) name = ref.repository.startsWith('library/') ? ref.repository.slice(8) : ref.repository
  return `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}

/** What to ask the registry for: the digest when pinned, else the tag. */
export function referenceTarget(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest'
}

export function withDigest(ref: Reference, digest: Digest): Reference {
  return {...ref, digest}
}

export function sameRepository(a: Reference, b: Reference): boolean {
  return a.registry === b.registry && a.repository === b.repository
}

/** The host that answers the registry API for `registry` (Docker Hub's API host differs from its name). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry
}
