import {KubeferryError} from '../../oci/errors.js'
import type {Transport} from '../transport.js'
import {parseChallenges, pickChallenge, type Challenge} from './challenge.js'
import type {Credential, CredentialProvider} from './credentials.js'

/** What a request needs access to, e.g. `repository:library/pause:pull`. */
export type Scope = string

export function repositoryScope(repository: string, actions: string[]): Scope {
  return `repository:${repository}:${actions.join(',')}`
}

interface CachedToken {
  header: string
  renewAt: number
}

/** Tokens are renewed this long before the server says they expire (a quarter of short lifetimes). */
const EXPIRY_MARGIN_MS = 5_000
const DEFAULT_TOKEN_LIFETIME_S = 60

export const AUTH_HINT = 'check --username/--password-stdin or run docker login for this registry'

/** What to check when the registry refused the credentials that were sent (never names the password). */
export function refusedHint(host: string, username: string | undefined): string {
  return `check the password${username ? ` of ${username}` : ''} for ${host} (what --password-stdin read, or log in again: docker login ${host}), and that the user may access this repository`
}

/**
 * Answers registry auth challenges. Remembers each host's challenge (so later requests get a token
 * up front), caches one Bearer token per host+service+scope until shortly before `expires_in`, and
 * renews it when the registry refuses it. Credentials (never logged) come from the provider.
 */
export class AuthManager {
  private readonly challenges = new Map<string, Challenge>()
  private readonly tokens = new Map<string, CachedToken>()
  private readonly pending = new Map<string, Promise<CachedToken>>()
  /** The user whose password went to each host as Basic auth (to say who was refused). */
  private readonly basicUsers = new Map<string, string>()

  constructor(
    private readonly transport: Transport,
    private readonly credentials: CredentialProvider,
  ) {}

  /** The Authorization header to send to `host` for `scopes`, if its challenge is known. */
  async authorization(host: string, scopes: Scope[]): Promise<string | undefined> {
    const challenge = this.challenges.get(host)
    if (!challenge) return undefined
    return this.answer(host, challenge, scopes, false)
  }

  /**
   * The registry answered 401: learn its challenge and return a new header to retry with, or
   * `undefined` when there is nothing new to try (then the 401 is final).
   */
  async unauthorized(host: string, wwwAuthenticate: string | string[] | undefined, scopes: Scope[], sent: string | undefined): Promise<string | undefined> {
    const challenge = pickChallenge(parseChallenges(wwwAuthenticate))
    if (!challenge) return undefined
    this.challenges.set(host, challenge)
    const wanted = mergeScopes(scopes, challenge.params.scope)
    const next = await this.answer(host, challenge, wanted, sent !== undefined)
    return next === sent ? undefined : next
  }

  /** The user named in a Basic `authorization` header sent to `host`, if that header is one of ours. */
  basicUser(host: string, authorization: string | undefined): string | undefined {
    return authorization?.startsWith('Basic ') ? this.basicUsers.get(host) : undefined
  }

  private async answer(host: string, challenge: Challenge, scopes: Scope[], refresh: boolean): Promise<string | undefined> {
    if (challenge.scheme === 'basic') {
      const cred = await this.credentials.get(host)
      if (!cred || !('username' in cred)) return undefined
      this.basicUsers.set(host, cred.username)
      return basicHeader(cred.username, cred.password)
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return undefined
    const key = `${host}|${challenge.params.service ?? ''}|${[...scopes].sort().join(' ')}`
    const cached = this.tokens.get(key)
    if (cached && !refresh && cached.renewAt > Date.now()) return cached.header
    let inflight = this.pending.get(key)
    if (!inflight) {
      inflight = this.fetchToken(host, challenge, scopes).finally(() => this.pending.delete(key))
      this.pending.set(key, inflight)
    }
    const token = await inflight
    this.tokens.set(key, token)
    return token.header
  }

  private async fetchToken(host: string, challenge: Challenge, scopes: Scope[]): Promise<CachedToken> {
    let realm: URL
    try {
      realm = new URL(challenge.params.realm)
    } catch {
      throw new KubeferryError('REGISTRY_ERROR', `registry ${host} sent an invalid token realm`, {hint: 'the registry is misconfigured; ask its operator'})
    }
    const cred: Credential | undefined = await this.credentials.get(host)
    const service = challenge.params.service
    let res
    try {
      if (cred && 'identityToken' in cred) {
        // Identity (refresh) tokens are exchanged with the OAuth2 form POST, as docker does.
        const form = new URLSearchParams({grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'kubeferry'})
        if (service) form.set('service', service)
        if (scopes.length > 0) form.set('scope', scopes.join(' '))
        res = await this.transport.send({method: 'POST', url: realm, headers: {'content-type': 'application/x-www-form-urlencoded'}, body: form.toString()})
      } else {
        const url = new URL(realm)
        if (service) url.searchParams.set('service', service)
        for (const scope of scopes) url.searchParams.append('scope', scope)
        const headers: Record<string, string> = {}
        if (cred) headers.authorization = basicHeader(cred.username, cred.password)
        res = await this.transport.send({method: 'GET', url, headers})
      }
    } catch (error) {
      throw new KubeferryError('NETWORK', `cannot reach the token service of registry ${host} at ${realm.origin}`, {hint: 'check the network path to the registry and its auth server', cause: error})
    }
    if (res.status === 401 || res.status === 403) {
      await res.body.dump()
      const who = !cred ? 'anonymous access' : 'username' in cred ? `user "${cred.username}"` : 'the identity token'
      throw new KubeferryError(res.status === 401 ? 'UNAUTHORIZED' : 'DENIED', `registry ${host} refused ${who} (its token service answered ${res.status}${cred && res.status === 401 ? ': wrong user name or password?' : ''})`, {
        hint: cred ? refusedHint(host, 'username' in cred ? cred.username : undefined) : AUTH_HINT,
      })
    }
    if (res.status < 200 || res.status > 299) {
      await res.body.dump()
      throw new KubeferryError('REGISTRY_ERROR', `the token service of registry ${host} answered HTTP ${res.status}`, {hint: 'try again later; if it persists, the registry auth server is broken'})
    }
    let json: {token?: unknown; access_token?: unknown; expires_in?: unknown}
    try {
      json = (await res.body.json()) as typeof json
    } catch {
      throw new KubeferryError('REGISTRY_ERROR', `the token service of registry ${host} sent an answer that is not JSON`)
    }
    const token = typeof json.token === 'string' && json.token !== '' ? json.token : typeof json.access_token === 'string' ? json.access_token : ''
    if (token === '') throw new KubeferryError('REGISTRY_ERROR', `the token service of registry ${host} sent no token`)
    const lifetime = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : DEFAULT_TOKEN_LIFETIME_S
    this.transport.log('debug', `got a token for ${host} (${scopes.join(' ') || 'no scope'}), valid ${lifetime}s`)
    const lifetimeMs = lifetime * 1000
    return {header: `Bearer ${token}`, renewAt: Date.now() + lifetimeMs - Math.min(EXPIRY_MARGIN_MS, lifetimeMs / 4)}
  }
}

function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
}

function mergeScopes(ours: Scope[], theirs: string | undefined): Scope[] {
  const all = new Set(ours)
  if (theirs) for (const s of theirs.split(' ')) if (s) all.add(s)
  return [...all]
}

