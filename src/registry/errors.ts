/**
 * A registry's refusal as data. Every non-success answer of the registry API becomes a RegistryError in one place
 * (`statusError`): the HTTP status, the distribution spec's `errors[]` ({code, message, detail}) and the request
 * (method and URL, without credentials or query) are fields, so decisions (retry, sparse index refused, not found)
 * read them and never the operator's message, whose wording may change.
 */
import {KubeferryError, type ErrorCode} from '../oci/errors.js'
import {AUTH_HINT, refusedHint} from './auth/token.js'
import type {Endpoint} from './mirrors.js'
import {redactUrl, type TransportResponse} from './transport.js'

/** One entry of a distribution error body (`{"errors":[{"code","message","detail"}]}`). */
export interface RegistryDiagnostic {
  code: string
  message?: string
  detail?: unknown
}

export interface RegistryErrorFields {
  /** The HTTP status the registry answered. */
  status: number
  /** The registry's error codes, in the order it sent them (empty when the body had none or was not JSON). */
  errors: RegistryDiagnostic[]
  /** The request that was refused: method and URL (no credentials, no query string). */
  request: {method: string; url: string}
}

export class RegistryError extends KubeferryError implements RegistryErrorFields {
  readonly status: number
  readonly errors: RegistryDiagnostic[]
  readonly request: {method: string; url: string}

  constructor(code: ErrorCode, message: string, fields: RegistryErrorFields, options: {hint?: string; cause?: unknown} = {}) {
    super(code, message, options)
    this.name = 'RegistryError'
    this.status = fields.status
    this.errors = fields.errors
    this.request = fields.request
  }

  /** True when the registry sent any of these distribution error codes. */
  hasCode(...codes: string[]): boolean {
    return this.errors.some((e) => e.code !== '' && codes.includes(e.code))
  }

  /** The same refusal with another hint (the fields are kept). */
  withHint(hint: string | undefined): RegistryError {
    return new RegistryError(this.code, this.message, this, {hint, cause: this.cause})
  }
}

export function isRegistryError(error: unknown): error is RegistryError {
  return error instanceof RegistryError
}

/** Statuses where another try may succeed: timeouts, rate limits and server errors. */
export function isTransientRegistryError(error: unknown): boolean {
  return error instanceof RegistryError && (error.status === 408 || error.status === 429 || (error.status >= 500 && error.status <= 599))
}

/** How much of an error body is read; the rest is drained unread (an HTML page or a proxy's dump says nothing). */
export const ERROR_BODY_LIMIT = 8192

/** The `errors[]` of a distribution error body; empty for anything else (not JSON, no array). An entry without a code gets code ''. */
export function parseErrorBody(text: string): RegistryDiagnostic[] {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return []
  }
  const list = (json as {errors?: unknown} | null)?.errors
  if (!Array.isArray(list)) return []
  const out: RegistryDiagnostic[] = []
  for (const item of list as Array<{code?: unknown; message?: unknown; detail?: unknown}>) {
    if (!item || typeof item !== 'object') continue
    out.push({code: typeof item.code === 'string' ? item.code : '', ...(typeof item.message === 'string' ? {message: item.message} : {}), ...(item.detail !== undefined ? {detail: item.detail} : {})})
  }
  return out
}

/** Read at most ERROR_BODY_LIMIT bytes of a response body (draining the rest) and parse it. */
export async function readErrorBody(res: TransportResponse): Promise<RegistryDiagnostic[]> {
  let text = ''
  try {
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res.body) {
      if (size < ERROR_BODY_LIMIT) chunks.push(chunk as Buffer)
      size += (chunk as Buffer).length
    }
    text = Buffer.concat(chunks).toString('utf8').slice(0, ERROR_BODY_LIMIT)
  } catch {
    return []
  }
  return parseErrorBody(text)
}

/** The first error as a short phrase for the operator's message (`CODE: message`), or '' when there is none. */
export function errorPhrase(errors: RegistryDiagnostic[]): string {
  const first = errors[0]
  return first ? [first.code, first.message].filter(Boolean).join(': ').slice(0, 200) : ''
}

/** Map a non-success answer to a RegistryError. `what` names the object, e.g. `image registry.k8s.io/pause:3.10`. */
export async function statusError(endpoint: Endpoint, res: TransportResponse, what: string, notFound?: string): Promise<RegistryError> {
  const errors = await readErrorBody(res)
  const fields: RegistryErrorFields = {status: res.status, errors, request: {method: res.method, url: redactUrl(res.url)}}
  const detail = errorPhrase(errors)
  const where = endpoint.mirror ? endpoint.label : `registry ${endpoint.label}`
  const suffix = detail ? ` (${detail})` : ''
  switch (res.status) {
    case 401:
      if (res.refusedUser !== undefined) {
        return new RegistryError('UNAUTHORIZED', `${where} refused user "${res.refusedUser}" for ${what}: wrong user name or password?${suffix}`, fields, {hint: refusedHint(endpoint.host, res.refusedUser)})
      }
      return new RegistryError('UNAUTHORIZED', `${where} requires authentication for ${what}${suffix}`, fields, {hint: AUTH_HINT})
    case 403:
      return new RegistryError('DENIED', `${where} denied access to ${what}${suffix}`, fields, {hint: AUTH_HINT})
    case 404:
      return new RegistryError('NOT_FOUND', notFound ?? `${what} not found in ${where}`, fields, {hint: 'check the name and tag; list tags with the registry API or skopeo list-tags'})
    case 429:
      return new RegistryError('REGISTRY_ERROR', `${where} kept rate-limiting requests for ${what}`, fields, {hint: 'wait and try again, log in for a higher limit, or use --mirror'})
    default:
      return new RegistryError('REGISTRY_ERROR', `${where} answered HTTP ${res.status} for ${what}${suffix}`, fields, {
        hint: res.status >= 500 ? 'the registry is failing; try again later or use --mirror' : 'the registry refused the request',
      })
  }
}
