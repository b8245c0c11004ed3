import type {Readable} from 'node:stream'
import type {Dispatcher} from 'undici'
import {backoffDelay, isRetryableNetworkError, networkErrorCode, isRetryableStatus, parseRetryAfter, sleep, type RetryPolicy} from './retry.js'
import {InsecurePolicy, loadCa} from './tls.js'
import {envHttpProxyAgentClass} from './undici-agent.js'

export type Headers = Record<string, string>

/** A request body: bytes, or a factory that opens a fresh stream for every (re)try. */
export type BodySource = Buffer | string | (() => Promise<Readable>)

export interface TransportRequest {
  method: string
  url: URL
  headers?: Headers
  body?: BodySource
  /** Set when the body is a stream factory (Content-Length must be known for registries). */
  contentLength?: number
}

export interface TransportResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Dispatcher.ResponseData['body']
  /** The URL that answered (after redirects). */
  url: URL
  /** The method that answered (a 303 turns a PUT into a GET). */
  method: string
  /** Set by RegistryHttp on a final 401 that answered credentials sent: whose (never the password). */
  refusedUser?: string
}

export interface TransportOptions {
  caFile?: string
  insecureRegistries?: string[]
  userAgent?: string
  stallTimeoutMs?: number
  retry: RetryPolicy
  log: (level: 'debug' | 'info' | 'warn', message: string) => void
}

const MAX_REDIRECTS = 10
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

export function header(res: {headers: TransportResponse['headers']}, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()]
  return Array.isArray(v) ? v[0] : v
}

/**
 * Stop reading a response body we no longer want (the connection is closed). undici reports that destruction as an
 * 'error' event (RequestAbortedError): with nobody left listening, Node.js would end the process with it.
 */
export function abandonBody(res: Pick<TransportResponse, 'body'>): void {
  res.body.on('error', () => undefined)
  res.body.destroy()
}

/**
 * The HTTP layer under the registry client: undici dispatchers (verified TLS by default, an
 * unverified one only for insecure hosts, both honouring HTTPS_PROXY/HTTP_PROXY/NO_PROXY),
 * redirects and retries. Redirects and retries are done here rather than with undici's
 * interceptors because a redirect to another host must drop `Authorization`, bodies must be
 * reopened from their factory on every try, and 429/5xx must honour Retry-After.
 */
export class Transport {
  readonly insecure: InsecurePolicy
  private readonly secureAgent: Dispatcher
  private readonly insecureAgent: Dispatcher
  private readonly options: TransportOptions

  constructor(options: TransportOptions) {
    this.options = options
    this.insecure = new InsecurePolicy(options.insecureRegistries)
    const ca = loadCa(options.caFile)
    const timeouts = {headersTimeout: options.stallTimeoutMs ?? 60_000, bodyTimeout: options.stallTimeoutMs ?? 60_000}
    const verified = ca ? {ca} : {}
    const EnvHttpProxyAgent = envHttpProxyAgentClass()
    this.secureAgent = new EnvHttpProxyAgent({...timeouts, connect: {...verified}, requestTls: {...verified}})
    const unverified = {rejectUnauthorized: false}
    this.insecureAgent = new EnvHttpProxyAgent({...timeouts, connect: unverified, requestTls: unverified})
  }

  get retry(): RetryPolicy {
    return this.options.retry
  }

  log(level: 'debug' | 'info' | 'warn', message: string): void {
    this.options.log(level, message)
  }

  private dispatcherFor(url: URL): Dispatcher {
    return url.protocol === 'https:' && this.insecure.skipsVerify(url.host) ? this.insecureAgent : this.secureAgent
  }

  /** One try, following redirects. Network errors are thrown as they come from undici. */
  async sendOnce(req: TransportRequest): Promise<TransportResponse> {
    let url = req.url
    let method = req.method
    let headers: Headers = {'user-agent': this.options.userAgent ?? 'kubeferry', ...req.headers}
    let body = req.body
    for (let hop = 0; ; hop++) {
      const opened = typeof body === 'function' ? await body() : body
      const sendHeaders = {...headers}
      if (typeof body === 'function' && req.contentLength !== undefined) sendHeaders['content-length'] = String(req.contentLength)
      let res: Dispatcher.ResponseData
      const sentAt = performance.now()
      try {
        // undici closes the connection after every HEAD (for servers that send a body anyway); registries do not, and
        // push asks HEAD for every blob and tag: keep-alive saves a TCP (and TLS) handshake each time.
        const keepAlive = method === 'HEAD' ? {reset: false} : {}
        res = await this.dispatcherFor(url).request({origin: url.origin, path: url.pathname + url.search, method: method as Dispatcher.HttpMethod, headers: sendHeaders, body: opened, ...keepAlive})
      } catch (error) {
        if (opened && typeof opened === 'object' && 'destroy' in opened) (opened as Readable).destroy()
        throw error
      }
      this.options.log('debug', `${method} ${redactUrl(url)} -> ${res.statusCode} (${Math.round(performance.now() - sentAt)} ms)`)
      const location = res.headers.location
      if (!REDIRECT_STATUSES.has(res.statusCode) || !location) {
        return {status: res.statusCode, headers: res.headers, body: res.body, url, method}
      }
      await res.body.dump()
      if (hop >= MAX_REDIRECTS) throw Object.assign(new Error(`too many redirects from ${redactUrl(req.url)}`), {code: 'TOO_MANY_REDIRECTS'})
      const next = new URL(Array.isArray(location) ? location[0] : location, url)
      if (next.origin !== url.origin) {
        // Never carry the registry's credentials to another host (object storage, CDN, …).
        const {authorization: _dropped, ...rest} = headers
        headers = rest
      }
      if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method !== 'GET' && method !== 'HEAD')) {
        method = 'GET'
        body = undefined
      }
      url = next
    }
  }

  /**
   * Send with bounded retries on connection errors and 408/429/5xx (Retry-After honoured).
   * A retryable status that persists is returned as the last response so callers can report it.
   */
  async send(req: TransportRequest, options: {retries?: boolean} = {}): Promise<TransportResponse> {
    const policy = this.options.retry
    const attempts = options.retries === false ? 1 : policy.attempts
    for (let attempt = 1; ; attempt++) {
      let res: TransportResponse
      try {
        res = await this.sendOnce(req)
      } catch (error) {
        // A refused connection gets two tries only: it rarely heals within seconds.
        const limit = networkErrorCode(error) === 'ECONNREFUSED' ? Math.min(attempts, 2) : attempts
        if (attempt >= limit || !isRetryableNetworkError(error)) throw error
        const delay = backoffDelay(policy, attempt)
        this.options.log('debug', `${req.method} ${redactUrl(req.url)} failed (${networkErrorCode(error) ?? 'error'}); retry ${attempt}/${limit - 1} in ${delay} ms`)
        await sleep(delay)
        continue
      }
      if (!isRetryableStatus(res.status) || attempt >= attempts) return res
      const delay = backoffDelay(policy, attempt, parseRetryAfter(res.headers['retry-after']))
      await res.body.dump()
      this.options.log('debug', `${req.method} ${redactUrl(req.url)} answered ${res.status}; retry ${attempt}/${attempts - 1} in ${delay} ms`)
      await sleep(delay)
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.secureAgent.close(), this.insecureAgent.close()])
  }
}

/** URLs are logged without query strings (pre-signed object-storage URLs carry signatures there). */
export function redactUrl(url: URL): string {
  return url.search ? `${url.origin}${url.pathname}?…` : `${url.origin}${url.pathname}`
}
