import {KubeferryError} from '../oci/errors.js'
import type {Reference} from '../oci/reference.js'
import type {LogFn} from './auth/credentials.js'
import {repositoryScope} from './auth/token.js'
import {RegistryError} from './errors.js'
import {pullEndpoints, type Endpoint} from './mirrors.js'

export function pullScope(repository: string): string {
  return repositoryScope(repository, ['pull'])
}

export function pushScope(repository: string): string {
  return repositoryScope(repository, ['pull', 'push'])
}

/**
 * Run `fn` on each endpoint of `ref.registry` (mirrors first, then upstream) until one succeeds.
 * When all fail, the most telling error wins: anything the registry said (not found, denied,
 * corrupt) beats "unreachable", so an offline upstream does not hide the mirror's answer.
 * A registry's refusal stays a RegistryError (status and codes kept) with the other endpoints named in its hint.
 */
export async function onPullEndpoints<T>(ref: Reference, mirrors: Record<string, string[]>, log: LogFn, fn: (ep: Endpoint) => Promise<T>): Promise<T> {
  const endpoints = pullEndpoints(ref.registry, mirrors)
  const errors: Array<{ep: Endpoint; error: KubeferryError}> = []
  for (const [i, ep] of endpoints.entries()) {
    try {
      return await fn(ep)
    } catch (error) {
      if (!(error instanceof KubeferryError)) throw error
      errors.push({ep, error})
      const next = endpoints[i + 1]
      if (next) log(error.code === 'NOT_FOUND' ? 'debug' : 'info', `${error.message}; trying ${next.label}`)
    }
  }
  const best = errors.find((e) => e.error.code !== 'NETWORK') ?? errors[0]
  if (errors.length === 1) throw best.error
  const others = errors.filter((e) => e !== best).map((e) => `${e.ep.label}: ${e.error.code === 'NETWORK' ? 'unreachable' : e.error.code.toLowerCase().replace(/_/g, ' ')}`)
  const hint = `${best.error.hint ? `${best.error.hint}; ` : ''}also tried ${others.join(', ')}`
  if (best.error instanceof RegistryError) throw best.error.withHint(hint)
  throw new KubeferryError(best.error.code, best.error.message, {hint, cause: best.error.cause})
}
