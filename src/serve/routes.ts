/**
 * Request target → route, refusing anything odd before a handler sees it: over-long URLs, `..`, `//`, backslashes,
 * NUL, percent-encoding other than `%3A` in digests, invalid repository names, tags and digests all give 400 with the
 * spec's error JSON. Writes of any kind are 405 UNSUPPORTED (this registry is read-only).
 */
import {isDigest, type Digest} from '../oci/digest.js'
import {isRepositoryPath} from '../registry/names.js'
import {RegistryHttpError} from './errors.js'

export const MAX_URL_LENGTH = 2048

export type Route =
  | {kind: 'base'}
  | {kind: 'catalog'; n?: number; last?: string}
  | {kind: 'tags'; name: string; n?: number; last?: string}
  | {kind: 'manifest'; name: string; tag?: string; digest?: Digest; ns?: string}
  | {kind: 'blob'; name: string; digest: Digest}
  /** OCI 1.1 referrers API (the publishers' artifacts a bundle carries), optionally filtered by artifactType. */
  | {kind: 'referrers'; name: string; digest: Digest; artifactType?: string}

const TAG = /^[\w][\w.-]{0,127}$/
const READ_METHODS = new Set(['GET', 'HEAD'])

function badRequest(code: 'NAME_INVALID' | 'BAD_REQUEST' | 'TAG_INVALID' | 'DIGEST_INVALID' | 'PAGINATION_NUMBER_INVALID', message: string): RegistryHttpError {
  return new RegistryHttpError(400, code, message)
}

function pageParams(query: URLSearchParams): {n?: number; last?: string} {
  const out: {n?: number; last?: string} = {}
  const n = query.get('n')
  if (n !== null) {
    if (!/^\d{1,6}$/.test(n)) throw badRequest('PAGINATION_NUMBER_INVALID', `invalid page size n=${JSON.stringify(n.slice(0, 20))}`)
    out.n = Number(n)
  }
  const last = query.get('last')
  if (last !== null && last !== '') out.last = last
  return out
}

function checkName(name: string): string {
  if (!isRepositoryPath(name)) throw badRequest('NAME_INVALID', 'invalid repository name')
  return name
}

/** Parse a request line. Throws RegistryHttpError for anything that is not a valid read of this API. */
export function parseRoute(method: string, rawUrl: string): Route {
  if (rawUrl.length > MAX_URL_LENGTH) throw badRequest('BAD_REQUEST', `request URL longer than ${MAX_URL_LENGTH} characters`)
  if (!rawUrl.startsWith('/')) throw badRequest('BAD_REQUEST', 'malformed request target')
  const q = rawUrl.indexOf('?')
  const rawPath = q === -1 ? rawUrl : rawUrl.slice(0, q)
  const rawQuery = q === -1 ? '' : rawUrl.slice(q + 1)

  // Only `%3A` (an encoded `:` in a digest) is decoded; any other escape has no business in a registry path.
  const path = rawPath.replace(/%3a/gi, ':')
  if (path.includes('%')) throw badRequest('BAD_REQUEST', 'percent-encoded characters are not allowed in the path')
  if (path.includes('\\') || path.includes('\0') || /[\x00-\x20\x7f]/.test(path)) throw badRequest('BAD_REQUEST', 'control characters or backslashes in the path')
  if (path.split('/').some((part) => part === '..' || part === '.')) throw badRequest('BAD_REQUEST', 'path traversal is not allowed')
  if (path.slice(1).includes('//')) throw badRequest('BAD_REQUEST', 'empty path segment')

  let query: URLSearchParams
  try {
    query = new URLSearchParams(rawQuery)
  } catch {
    throw badRequest('BAD_REQUEST', 'malformed query string')
  }

  if (!path.startsWith('/v2/') && path !== '/v2') throw new RegistryHttpError(404, 'UNSUPPORTED', 'not a registry API endpoint (expected /v2/…)')
  if (!READ_METHODS.has(method)) throw new RegistryHttpError(405, 'UNSUPPORTED', 'this registry is read-only (kubeferry serve)', {method})

  if (path === '/v2' || path === '/v2/') return {kind: 'base'}
  if (path === '/v2/_catalog') return {kind: 'catalog', ...pageParams(query)}

  const rest = path.slice('/v2/'.length)
  let match = /^(.+)\/tags\/list$/.exec(rest)
  if (match) return {kind: 'tags', name: checkName(match[1]), ...pageParams(query)}
  match = /^(.+)\/manifests\/([^/]+)$/.exec(rest)
  if (match) {
    const name = checkName(match[1])
    const reference = match[2]
    const ns = query.get('ns') ?? undefined
    if (reference.includes(':')) {
      if (!isDigest(reference)) throw badRequest('DIGEST_INVALID', 'invalid digest (only sha256:<64 lowercase hex> is served)')
      return {kind: 'manifest', name, digest: reference, ...(ns ? {ns} : {})}
    }
    if (!TAG.test(reference)) throw badRequest('TAG_INVALID', 'invalid tag')
    return {kind: 'manifest', name, tag: reference, ...(ns ? {ns} : {})}
  }
  match = /^(.+)\/referrers\/([^/]+)$/.exec(rest)
  if (match) {
    const name = checkName(match[1])
    if (!isDigest(match[2])) throw badRequest('DIGEST_INVALID', 'invalid digest (only sha256:<64 lowercase hex> is served)')
    const artifactType = query.get('artifactType') ?? undefined
    return {kind: 'referrers', name, digest: match[2], ...(artifactType ? {artifactType} : {})}
  }
  match = /^(.+)\/blobs\/uploads(\/.*)?$/.exec(rest)
  if (match) throw new RegistryHttpError(405, 'UNSUPPORTED', 'this registry is read-only (kubeferry serve)')
  match = /^(.+)\/blobs\/([^/]+)$/.exec(rest)
  if (match) {
    const name = checkName(match[1])
    if (!isDigest(match[2])) throw badRequest('DIGEST_INVALID', 'invalid digest (only sha256:<64 lowercase hex> is served)')
    return {kind: 'blob', name, digest: match[2]}
  }
  throw new RegistryHttpError(404, 'UNSUPPORTED', 'unknown registry API endpoint')
}

/** Parse a `Range` header against a blob size. undefined = serve everything; 'unsatisfiable' → 416. */
export function parseRange(header: string | undefined, size: number): {start: number; end: number} | undefined | 'unsatisfiable' {
  if (header === undefined) return undefined
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!match) {
    // Several ranges: allowed to be ignored (RFC 9110 §14.2); anything else is a bad range, as Go's ServeContent says.
    return /^bytes=[\d\s,-]+$/.test(header.trim()) && header.includes(',') ? undefined : 'unsatisfiable'
  }
  const [, first, last] = match
  if (first === '' && last === '') return 'unsatisfiable'
  if (first === '') {
    const suffix = Number(last)
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return {start: Math.max(0, size - suffix), end: size - 1}
  }
  const start = Number(first)
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
  if (!Number.isSafeInteger(start) || start >= size || (last !== '' && Number(last) < start)) return 'unsatisfiable'
  return {start, end}
}
