import {KubeferryError} from '../oci/errors.js'
import {AuthManager, type Scope} from './auth/token.js'
import type {CredentialProvider} from './auth/credentials.js'
import type {Endpoint} from './mirrors.js'
import {networkErrorCode} from './retry.js'
import {header, type BodySource, type Headers, type Transport, type TransportResponse} from './transport.js'

export interface ApiRequest {
  endpoint: Endpoint
  method: string
  /** Path after `/v2/` (e.g. `library/pause/manifests/3.10`), or `url` for an absolute one (upload Location, Link). */
  path?: string
  url?: URL
  query?: Record<string, string>
  headers?: Headers
  body?: BodySource
  contentLength?: number
  scopes: Scope[]
  retries?: boolean
}

/**
 * Registry API calls on one endpoint: picks the scheme (probing https then http for insecure hosts),
 * adds Authorization from the AuthManager, answers 401 challenges once, and turns network failures
 * into KubeferryErrors naming the registry. HTTP statuses are left to the caller to interpret.
 */
export class RegistryHttp {
  private readonly schemes = new Map<string, Promise<'https' | 'http'>>()
  readonly auth: AuthManager

  constructor(
    readonly transport: Transport,
    credentials: CredentialProvider,
  ) {
    this.auth = new AuthManager(transport, credentials)
  }

  async baseUrl(endpoint: Endpoint): Promise<URL> {
    const scheme = endpoint.scheme ?? (await this.scheme(endpoint.host))
    return new URL(`${scheme}://${endpoint.host}/v2/`)
  }

  private scheme(host: string): Promise<'https' | 'http'> {
    if (!this.transport.insecure.allows(host)) return Promise.resolve('https')
    let found = this.schemes.get(host)
    if (!found) {
      // Hosts allowed plain http: https if they speak TLS, else http (as docker does). A certificate
      // error means the host does speak TLS: stay on https and let the request report it.
      found = this.transport
        .sendOnce({method: 'GET', url: new URL(`https://${host}/v2/`)})
        .then(async (res) => {
          await res.body.dump()
          return 'https' as const
        })
        .catch((error: unknown) => (TLS_CODES.test(networkErrorCode(error) ?? '') ? ('https' as const) : ('http' as const)))
      this.schemes.set(host, found)
    }
    return found
  }

  /** A final 401 to credentials we sent says whose they were, so the error can tell a wrong password from none. */
  private refused(res: TransportResponse, host: string, authorization: string | undefined, sent: boolean): TransportResponse {
    if (res.status === 401 && sent) res.refusedUser = this.auth.basicUser(host, authorization)
    return res
  }

  async request(req: ApiRequest): Promise<TransportResponse> {
    const url = req.url ?? new URL(req.path ?? '', await this.baseUrl(req.endpoint))
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, v)
    const host = req.endpoint.host
    let authorization = await this.auth.authorization(host, req.scopes)
    for (let round = 0; ; round++) {
      // Authorization only ever goes to the endpoint's own origin (absolute URLs may point elsewhere).
      const sameHost = url.host === host
      const headers: Headers = {...req.headers, ...(authorization && sameHost ? {authorization} : {})}
      let res: TransportResponse
      try {
        res = await this.transport.send({method: req.method, url, headers, body: req.body, contentLength: req.contentLength}, {retries: req.retries})
      } catch (error) {
        if (error instanceof KubeferryError) throw error
        throw networkError(req.endpoint, error)
      }
      if (res.status !== 401 || round >= 2 || !sameHost) return this.refused(res, host, authorization, sameHost)
      const next = await this.auth.unauthorized(host, res.headers['www-authenticate'], req.scopes, authorization)
      if (next === undefined) return this.refused(res, host, authorization, sameHost)
      await res.body.dump()
      authorization = next
    }
  }
}

/** Certificate problems (the host speaks TLS but is not trusted), as opposed to protocol mismatches. */
const TLS_CODES = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)/

/** A network failure as one operator line: which registry, what went wrong, what to try. */
export function networkError(endpoint: Endpoint, error: unknown): KubeferryError {
  const code = networkErrorCode(error) ?? 'unknown error'
  const upstream = endpoint.mirror ? endpoint.label.replace(/^.*\(for (.*)\)$/, '$1') : endpoint.label
  if (TLS_CODES.test(code)) {
    return new KubeferryError('TLS', `TLS verification failed for ${endpoint.label} (${code})`, {
      hint: `give the registry's CA with --ca-file, or allow it explicitly with --insecure-registry ${endpoint.host}`,
      cause: error,
    })
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') {
    return new KubeferryError('NETWORK', `${endpoint.mirror ? endpoint.label : `registry ${endpoint.label}`} does not speak TLS (plain http?)`, {
      hint: endpoint.mirror ? 'write the mirror URL with http:// if it serves plain http' : `allow plain http explicitly with --insecure-registry ${endpoint.host}`,
      cause: error,
    })
  }
  const what = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? `unknown host ${endpoint.host}` : code === 'ECONNREFUSED' ? 'connection refused' : code
  return new KubeferryError('NETWORK', `cannot reach ${endpoint.mirror ? endpoint.label : `registry ${endpoint.label}`}: ${what}`, {
    hint: endpoint.mirror
      ? 'check that the mirror is running and the --mirror URL is right'
      : `check the registry name and the network; without internet access use --mirror ${upstream}=http://MIRROR:PORT`,
    cause: error,
  })
}

export {statusError} from './errors.js'
export {header}
