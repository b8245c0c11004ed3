/** Shared by the serve tests: an in-process server over test bundles, HTTP helpers (undici and raw sockets). */
import {connect} from 'node:net'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {request} from 'undici'
import {AccessLog} from '../../src/serve/access-log.js'
import type {Catalog} from '../../src/serve/catalog.js'
import {loadCatalog, startRegistryServer, type RunningServer} from '../../src/serve/server.js'
import type {Peers} from '../harness/peers.js'
import {spawnCli} from '../helpers/cli.js'
import {makeBundle, testImageLayout, type ImageLayout} from './make-bundle.js'

export interface TestServer extends RunningServer {
  catalog: Catalog
  logLines: string[]
}

export async function serveBundles(paths: string[], options: {prefix?: string; contentVerified?: boolean; json?: boolean; idleTimeoutMs?: number} = {}): Promise<TestServer> {
  const logLines: string[] = []
  const catalog = await loadCatalog(paths, {prefix: options.prefix, ...(options.contentVerified === false ? {} : {verify: async () => undefined})})
  const running = await startRegistryServer(catalog, {host: '127.0.0.1', port: 0, idleTimeoutMs: options.idleTimeoutMs, log: new AccessLog(Boolean(options.json), (line) => logLines.push(line))})
  return {...running, catalog, logLines}
}

let shared: Promise<{path: string; layout: ImageLayout}> | undefined

/** One bundle of every test image (2 platforms), made once per test file process. */
export async function sharedBundle(peers?: Peers): Promise<{path: string; layout: ImageLayout}> {
  shared ??= (async () => {
    const layout = await testImageLayout(peers)
    const dir = await mkdtemp(join(tmpdir(), 'kubeferry-serve-'))
    const path = join(dir, 'all.tar')
    await makeBundle({output: path, layout})
    return {path, layout}
  })()
  return shared
}

export interface Answer {
  status: number
  headers: Record<string, string>
  body: Buffer
}

export async function get(url: string, options: {method?: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'; headers?: Record<string, string>; body?: string} = {}): Promise<Answer> {
  const response = await request(url, {method: options.method ?? 'GET', headers: options.headers, body: options.body})
  const chunks: Buffer[] = []
  for await (const chunk of response.body) chunks.push(chunk as Buffer)
  const headers: Record<string, string> = {}
  for (const [key, value] of Object.entries(response.headers)) headers[key] = Array.isArray(value) ? value.join(', ') : String(value)
  return {status: response.statusCode, headers, body: Buffer.concat(chunks)}
}

export function errorCode(answer: Answer): string | undefined {
  try {
    return (JSON.parse(answer.body.toString('utf8')) as {errors: Array<{code: string}>}).errors[0].code
  } catch {
    return undefined
  }
}

/** Send raw bytes and return the raw answer (for requests undici would normalise or refuse to send). */
export async function rawRequest(url: string, text: string): Promise<string> {
  const {hostname, port} = new URL(url)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    const chunks: Buffer[] = []
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')))
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
    socket.on('error', (error) => (chunks.length ? resolve(Buffer.concat(chunks).toString('latin1')) : reject(error)))
    socket.setTimeout(10_000, () => socket.destroy())
    socket.write(text)
  })
}

export const projectRoot = new URL('../../../', import.meta.url).pathname

export interface CliServer {
  child: import('node:child_process').ChildProcess
  /** First stdout line (the `listening` document with --json). */
  first: string
  stderr: () => string
  exited: Promise<number | null>
}

/** Run `kubeferry serve …`; resolves with the first stdout line, or rejects with stderr when it exits first. */
export async function startCli(args: string[], timeoutMs = 30_000, env?: NodeJS.ProcessEnv): Promise<CliServer> {
  const child = spawnCli(['serve', ...args], {stdio: ['ignore', 'pipe', 'pipe'], env})
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8')
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`serve did not start in ${timeoutMs} ms: ${stderr}`))
    }, timeoutMs)
    child.stdout!.on('data', (chunk: string) => {
      stdout += chunk
      const nl = stdout.indexOf('\n')
      if (nl !== -1) {
        clearTimeout(timer)
        resolve(stdout.slice(0, nl))
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(Object.assign(new Error(`serve exited with ${code}: ${stderr}`), {code, stderr}))
    })
  })
  return {child, first, stderr: () => stderr, exited}
}

/** Stop a CLI server by its PID (SIGTERM) and return its exit code. */
export async function stopCli(server: CliServer): Promise<number | null> {
  if (server.child.exitCode === null && server.child.pid) process.kill(server.child.pid, 'SIGTERM')
  return server.exited
}
