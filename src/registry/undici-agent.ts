/**
 * undici's EnvHttpProxyAgent, loaded without undici's index. The index pulls in all of undici (fetch, WebSocket,
 * EventSource, the cache store, mocks…): about 65 ms of start-up on every command, while kubeferry needs one
 * dispatcher class and its `request()`. The index does no more for those than attach its API methods to
 * `Dispatcher.prototype`, which is repeated here. If a later undici moves these files, the full index is used (same
 * behaviour, slower start) and the unit test `undici-agent` fails so the change is noticed.
 */
import {createRequire} from 'node:module'
import type {EnvHttpProxyAgent} from 'undici'

type AgentClass = typeof EnvHttpProxyAgent

export let undiciLoad: 'lean' | 'full' | undefined

let cached: AgentClass | undefined

function loadLean(require: NodeJS.Require): AgentClass | undefined {
  try {
    const agent = require('undici/lib/dispatcher/env-http-proxy-agent.js') as AgentClass
    const dispatcher = require('undici/lib/dispatcher/dispatcher.js') as {prototype: Record<string, unknown>}
    const api = require('undici/lib/api/index.js') as Record<string, unknown>
    if (typeof agent !== 'function' || typeof api.request !== 'function' || !(agent.prototype instanceof (dispatcher as unknown as AgentClass))) return undefined
    for (const [name, fn] of Object.entries(api)) if (dispatcher.prototype[name] === undefined) dispatcher.prototype[name] = fn
    return agent
  } catch {
    return undefined
  }
}

export function envHttpProxyAgentClass(): AgentClass {
  if (cached) return cached
  const require = createRequire(import.meta.url)
  const lean = loadLean(require)
  undiciLoad = lean ? 'lean' : 'full'
  cached = lean ?? (require('undici') as {EnvHttpProxyAgent: AgentClass}).EnvHttpProxyAgent
  return cached
}
