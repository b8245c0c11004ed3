/**
 * A small Docker registry token server (the "realm" of `auth: token` in distribution's config).
 *
 *   GET  /token?service=S&scope=repository:NAME:pull,push[&scope=…]   Basic auth optional
 *   POST /token  (form: grant_type=password|refresh_token, username, password, refresh_token, service, scope)
 *   GET  /stats  → {issued, byUser}
 *
 * Known users get every action they ask for (pull, push, delete, *). Anonymous callers get a token with
 * NO access, so the registry answers 401 insufficient_scope — the token registry refuses anonymous pulls.
 * A wrong password or an unknown refresh token gets 401 from here.
 *
 * Tokens are JWTs signed RS256 by the key whose self-signed certificate is the registry's
 * rootcertbundle; the certificate rides in the JWT header as `x5c`, which distribution 2.8 accepts
 * in place of a libtrust `kid`.
 *
 * Users may have their own `expiresIn`; their tokens' `exp` is set back by distribution's 60 s leeway,
 * so the registry really refuses them after `expiresIn` seconds (what a refresh test needs).
 */
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject} from 'node:crypto'

/** distribution's token verifier accepts `exp` up to this many seconds in the past. */
const REGISTRY_LEEWAY_SECONDS = 60

export interface TokenUser {
  password: string
  /** Token lifetime in seconds (default: the server's). */
  expiresIn?: number
  /** A refresh token (identity token) that stands for this user in the OAuth2 POST flow. */
  refreshToken?: string
}

export interface TokenServerOptions {
  keyPem: string
  certPem: string
  issuer: string
  service: string
  users: Record<string, TokenUser>
  /** Default token lifetime in seconds (300). */
  expiresIn?: number
  host?: string
  port?: number
}

export interface AccessEntry {
  type: string
  name: string
  actions: string[]
}

export interface RunningTokenServer {
  url: string
  realm: string
  server: Server
  stats: {issued: number; byUser: Record<string, number>}
  close(): Promise<void>
}

const base64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url')

/** Parse `repository:name:pull,push` (the name may hold colons only with a port, as `registry:catalog:*`). */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':')
  const last = scope.lastIndexOf(':')
  if (first < 0 || last === first) return undefined
  const actions = scope.slice(last + 1).split(',').filter(Boolean)
  return {type: scope.slice(0, first), name: scope.slice(first + 1, last), actions}
}

export function signToken(key: KeyObject, certDerBase64: string, claims: Record<string, unknown>): string {
  const header = {typ: 'JWT', alg: 'RS256', x5c: [certDerBase64]}
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`
  const signature = sign('sha256', Buffer.from(signingInput), key)
  return `${signingInput}.${base64url(signature)}`
}

export async function startTokenServer(options: TokenServerOptions): Promise<RunningTokenServer> {
  const key = createPrivateKey(options.keyPem)
  const certDer = new X509Certificate(options.certPem).raw.toString('base64')
  const defaultExpiresIn = options.expiresIn ?? 300
  const stats = {issued: 0, byUser: {} as Record<string, number>}

  const issue = (user: string | undefined, scopes: string[], service: string): Record<string, unknown> => {
    const now = Math.floor(Date.now() / 1000)
    const expiresIn = (user && options.users[user]?.expiresIn) || defaultExpiresIn
    const access: AccessEntry[] = []
    if (user) {
      for (const scope of scopes) {
        const entry = parseScope(scope)
        if (entry) access.push(entry)
      }
    }
    const claims = {
      iss: options.issuer,
      sub: user ?? '',
      aud: service,
      exp: now + expiresIn - (expiresIn < REGISTRY_LEEWAY_SECONDS * 2 ? REGISTRY_LEEWAY_SECONDS : 0),
      nbf: now - 5,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    }
    const token = signToken(key, certDer, claims)
    stats.issued++
    const who = user ?? '<anonymous>'
    stats.byUser[who] = (stats.byUser[who] ?? 0) + 1
    return {token, access_token: token, expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString()}
  }

  const basicUser = (req: IncomingMessage): string | undefined | null => {
    const header = req.headers.authorization
    if (!header) return undefined
    const match = /^Basic\s+(.+)$/i.exec(header)
    if (!match) return null
    const decoded = Buffer.from(match[1], 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon < 0) return null
    const user = decoded.slice(0, colon)
    const password = decoded.slice(colon + 1)
    return options.users[user]?.password === password ? user : null
  }

  const reply = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, {'content-type': 'application/json', ...headers})
    res.end(JSON.stringify(body))
  }
  const unauthorized = (res: ServerResponse, message: string): void => {
    reply(res, 401, {errors: [{code: 'UNAUTHORIZED', message}]}, {'www-authenticate': 'Basic realm="kubeferry-test-token"'})
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid')
    if (req.method === 'GET' && url.pathname === '/stats') {
      reply(res, 200, stats)
      return
    }
    if (url.pathname !== '/token') {
      reply(res, 404, {errors: [{code: 'NOT_FOUND', message: 'unknown path'}]})
      return
    }
    if (req.method === 'GET') {
      const user = basicUser(req)
      if (user === null) {
        unauthorized(res, 'invalid username or password')
        return
      }
      const service = url.searchParams.get('service') ?? options.service
      reply(res, 200, issue(user, url.searchParams.getAll('scope').flatMap((s) => s.split(' ')), service))
      return
    }
    if (req.method === 'POST') {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (chunk: string) => {
        body += chunk
        if (body.length > 65_536) req.destroy()
      })
      req.on('end', () => {
        const form = new URLSearchParams(body)
        const grant = form.get('grant_type')
        let user: string | undefined
        if (grant === 'password') {
          const name = form.get('username') ?? ''
          if (options.users[name]?.password !== form.get('password')) {
            unauthorized(res, 'invalid username or password')
            return
          }
          user = name
        } else if (grant === 'refresh_token') {
          const presented = form.get('refresh_token')
          user = Object.entries(options.users).find(([, u]) => u.refreshToken && u.refreshToken === presented)?.[0]
          if (!user) {
            unauthorized(res, 'invalid refresh token')
            return
          }
        } else {
          reply(res, 400, {error: 'unsupported_grant_type'})
          return
        }
        const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean)
        const issued = issue(user, scopes, form.get('service') ?? options.service)
        const refreshToken = options.users[user].refreshToken
        reply(res, 200, {...issued, ...(form.get('access_type') === 'offline' && refreshToken ? {refresh_token: refreshToken} : {}), scope: scopes.join(' ')})
      })
      return
    }
    reply(res, 405, {errors: [{code: 'UNSUPPORTED', message: 'method not allowed'}]})
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve())
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`
  return {
    url,
    realm: `${url}/token`,
    server,
    stats,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
