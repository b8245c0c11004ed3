/**
 * undici's EnvHttpProxyAgent, loaded without undici's index. The index pulls in all of undici (fetch, WebSocket,
 * EventSource, the cache store, mocks…): about 65 ms of start-up on every command, while kubeferry needs one
 * dispatcher class and its `request()`. The index does no more for those than attach its API methods to
 * `Dispatcher.prototype`, which is repeated here. If a later undici moves these files, the full index is used (same
 * behaviour, slower start) and the unit test `undici-agent` fails so the change is noticed.
 */
import {createRequire} from 'node:module'
import v8 from 'node:v8'
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
  preferLiftoff()
  return cached
}

/**
 * undici parses HTTP with llhttp compiled to WebAssembly. By default V8 recompiles its hot parser function with
 * TurboFan on a background thread, and Node.js waits for that compile before the process may exit: 70-100 ms of CPU
 * and wall time at the end of every command that made a request (measured: re-push 390 → 315 ms), and no gain while
 * it runs (a 440 MB download used less CPU without it). Liftoff, V8's baseline WebAssembly compiler, is enough for
 * llhttp, which skips over bodies rather than scanning them.
 * Set here, once undici's modules are loaded and before its first connection compiles llhttp, not at start-up: a
 * changed V8 flag makes V8 refuse every code cache made without it, Node.js's own for its built-in modules among
 * them (node:crypto, node:tty… then compile from source: 20-50 ms of every start measured here).
 * Only on the V8 versions known to have the flag (Node.js 20-24: V8 11-13): an unknown flag prints an error.
 */
function preferLiftoff(): void {
  if (Number(process.versions.v8.split('.')[0]) <= 13) v8.setFlagsFromString('--liftoff-only')
}
