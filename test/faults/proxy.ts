/**
 * A fault-injecting HTTP proxy for tests: it sits in front of a REAL registry peer (kubeferry talks to the proxy
 * through `--mirror` or as a push destination) and forwards every request, except that rules can break the
 * exchange the way real networks and registries do: answer a status (429 + Retry-After, 503), reset the connection
 * after N response (or request) bytes, truncate a body, flip one byte, trickle or stall, redirect a blob to another
 * host ("object storage"), or be down (connections reset or refused) for a while.
 *
 * Rules apply in order; the first one that matches and still has `times` left is used. Every request is logged
 * (method, path, status, whether it carried Authorization or Range) so tests can assert what the client did.
 */
import {createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo, Socket} from 'node:net'
import {Transform, type TransformCallback} from 'node:stream'

export type Fault =
  /** Answer this status without asking upstream (e.g. 429 with Retry-After, 503). */
  | {kind: 'status'; status: number; headers?: Record<string, string>; body?: string}
  /** Forward the response head and `afterBytes` body bytes, then reset the TCP connection. */
  | {kind: 'reset'; afterBytes: number}
  /** Forward the head (full Content-Length) and `afterBytes` body bytes, then close the connection cleanly (FIN). */
  | {kind: 'truncate'; afterBytes: number}
  /** Flip one byte of the response body at `offset` (XOR 0xff). */
  | {kind: 'corrupt'; offset: number}
  /** Forward the request without its Range header: a registry that ignores Range (answers 200, the whole blob). */
  | {kind: 'ignore-range'}
  /** Send the response body in `chunkBytes` pieces, `delayMs` apart. */
  | {kind: 'trickle'; chunkBytes: number; delayMs: number}
  /** Forward `afterBytes` body bytes, then send nothing for `ms` before the rest. */
  | {kind: 'stall'; afterBytes: number; ms: number}
  /** When upstream answers 200 to a GET, answer `status` (307) with Location = `location(path)` instead. */
  | {kind: 'redirect'; status?: number; location: (path: string) => string}
  /** Reset the connection after forwarding `afterBytes` of the REQUEST body upstream (a dying upload). */
  | {kind: 'request-reset'; afterBytes: number}
  /** Flip one byte of the REQUEST body at `offset` before it reaches upstream (a corrupted upload). */
  | {kind: 'request-corrupt'; offset: number}
  /** Forward `afterBytes` of the REQUEST body upstream, then close the client connection cleanly (a cut upload). */
  | {kind: 'request-truncate'; afterBytes: number}
  /** Forward the REQUEST body in `chunkBytes` pieces, `delayMs` apart (a slow uplink). */
  | {kind: 'request-trickle'; chunkBytes: number; delayMs: number}

export interface Rule {
  /** For logs and assertions. */
  name?: string
  method?: string | RegExp
  /** Matched against the path with its query string. */
  path?: RegExp
  /** Further condition on the request (headers, e.g. a large content-length). */
  when?: (req: IncomingMessage) => boolean
  /** Skip this many matching requests first (default 0). */
  skip?: number
  /** Apply to this many matching requests, then stop (default: every one). */
  times?: number
  fault: Fault
}

export interface LoggedRequest {
  method: string
  path: string
  status?: number
  fault?: string
  authorization: boolean
  range?: string
  time: number
  /** Response body bytes sent to the client (so far). */
  bytes: number
}

interface LiveRule extends Rule {
  seen: number
  applied: number
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  url: string
  /** 127.0.0.1:PORT */
  host: string
  port: number
  log: LoggedRequest[]
  /** Replace the rules (and their counters). */
  setRules(rules: Rule[]): void
  /** How many times each named rule fired. */
  applied(name: string): number
  /** Connections reset because the proxy was down('reset'). */
  readonly downResets: number
  /**
   * Be down: 'reset' accepts and resets every connection, 'refuse' stops listening (connection refused). Until `up()`.
   */
  down(mode: 'reset' | 'refuse'): Promise<void>
  up(): Promise<void>
  close(): Promise<void>
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'])

function copyHeaders(headers: IncomingMessage['headers'], drop: string[] = []): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || drop.includes(k)) continue
    out[k] = v
  }
  return out
}

/** Pass bytes through, acting once `position` crosses `at` (cut, flip, pause). */
class ByteWatcher extends Transform {
  private position = 0
  constructor(private readonly onChunk: (chunk: Buffer, position: number, push: (b: Buffer) => void, done: TransformCallback) => void) {
    super()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const start = this.position
    this.position += chunk.length
    this.onChunk(chunk, start, (b) => this.push(b), done)
  }
}

function trickle(chunkBytes: number, delayMs: number): Transform {
  return new ByteWatcher((chunk, _pos, push, done) => {
    void (async () => {
      for (let i = 0; i < chunk.length; i += chunkBytes) {
        push(chunk.subarray(i, i + chunkBytes))
        await sleep(delayMs)
      }
      done()
    })()
  })
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function resetSocket(socket: Socket): void {
  if (typeof (socket as Socket & {resetAndDestroy?: () => void}).resetAndDestroy === 'function') socket.resetAndDestroy()
  else socket.destroy()
}

export async function startFaultProxy(upstream: string, options: {host?: string; port?: number} = {}): Promise<FaultProxy> {
  const target = new URL(upstream)
  let rules: LiveRule[] = []
  let downMode: 'reset' | undefined
  let downResets = 0
  const log: LoggedRequest[] = []
  const sockets = new Set<Socket>()
  const upstreams = new Set<ReturnType<typeof httpRequest>>()
  const appliedCount = new Map<string, number>()

  const pick = (req: IncomingMessage): LiveRule | undefined => {
    for (const rule of rules) {
      if (rule.method && (typeof rule.method === 'string' ? rule.method !== req.method : !rule.method.test(req.method ?? ''))) continue
      if (rule.path && !rule.path.test(req.url ?? '')) continue
      if (rule.when && !rule.when(req)) continue
      rule.seen++
      if (rule.seen <= (rule.skip ?? 0)) continue
      if (rule.times !== undefined && rule.applied >= rule.times) continue
      rule.applied++
      if (rule.name) appliedCount.set(rule.name, (appliedCount.get(rule.name) ?? 0) + 1)
      return rule
    }
    return undefined
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const entry: LoggedRequest = {method: req.method ?? '', path: req.url ?? '', authorization: Boolean(req.headers.authorization), time: Date.now(), bytes: 0}
    const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) entry.bytes += Buffer.byteLength(chunk)
      return write(chunk, ...rest)
    }) as typeof res.write
    if (typeof req.headers.range === 'string') entry.range = req.headers.range
    log.push(entry)
    const rule = pick(req)
    const fault = rule?.fault
    if (fault) entry.fault = rule?.name ?? fault.kind

    if (fault?.kind === 'status') {
      req.resume()
      entry.status = fault.status
      res.writeHead(fault.status, {'content-type': 'application/json', ...fault.headers})
      res.end(fault.body ?? JSON.stringify({errors: [{code: 'UNAVAILABLE', message: `injected ${fault.status}`}]}))
      return
    }

    const upstreamReq = httpRequest({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      // The client's Host is kept, so the registry's absolute upload Locations point back at the proxy.
      headers: copyHeaders(req.headers, fault?.kind === 'ignore-range' ? ['range'] : []),
    })
    upstreams.add(upstreamReq)
    upstreamReq.on('close', () => upstreams.delete(upstreamReq))
    // A client that goes away (killed, reset) takes its upstream exchange with it.
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy()
    })
    upstreamReq.on('error', () => {
      if (!res.headersSent) {
        entry.status = 502
        res.writeHead(502).end()
      } else res.destroy()
    })

    // Request body (uploads): maybe corrupt or cut it.
    if (fault?.kind === 'request-reset' || fault?.kind === 'request-truncate') {
      req.pipe(
        new ByteWatcher((chunk, pos, push, done) => {
          if (pos + chunk.length <= fault.afterBytes) {
            push(chunk)
            done()
            return
          }
          push(chunk.subarray(0, Math.max(0, fault.afterBytes - pos)))
          done()
          entry.status = 0
          setTimeout(() => {
            if (fault.kind === 'request-reset') resetSocket(req.socket)
            else req.socket.end()
            upstreamReq.destroy()
          }, 10)
        }),
      ).pipe(upstreamReq)
    } else if (fault?.kind === 'request-corrupt') {
      req
        .pipe(
          new ByteWatcher((chunk, pos, push, done) => {
            if (fault.offset >= pos && fault.offset < pos + chunk.length) {
              const copy = Buffer.from(chunk)
              copy[fault.offset - pos] ^= 0xff
              push(copy)
            } else push(chunk)
            done()
          }),
        )
        .pipe(upstreamReq)
    } else if (fault?.kind === 'request-trickle') {
      req.pipe(trickle(fault.chunkBytes, fault.delayMs)).pipe(upstreamReq)
    } else {
      req.pipe(upstreamReq)
    }

    upstreamReq.on('response', (up) => {
      entry.status = up.statusCode
      if (fault?.kind === 'redirect' && up.statusCode === 200 && req.method === 'GET') {
        up.resume()
        entry.status = fault.status ?? 307
        res.writeHead(fault.status ?? 307, {location: fault.location(req.url ?? ''), 'content-length': '0'})
        res.end()
        return
      }
      res.writeHead(up.statusCode ?? 502, copyHeaders(up.headers))
      if (!fault || fault.kind === 'redirect' || fault.kind === 'ignore-range' || fault.kind.startsWith('request-')) {
        up.pipe(res)
        return
      }
      switch (fault.kind) {
        case 'reset':
        case 'truncate': {
          up.pipe(
            new ByteWatcher((chunk, pos, push, done) => {
              if (pos + chunk.length <= fault.afterBytes) {
                push(chunk)
                done()
                return
              }
              push(chunk.subarray(0, Math.max(0, fault.afterBytes - pos)))
              done()
              up.unpipe()
              up.destroy()
              // Let the bytes leave, then cut: RST for reset, FIN for truncate.
              setTimeout(() => (fault.kind === 'reset' ? resetSocket(res.socket!) : res.socket?.end()), 20)
            }),
          ).pipe(res)
          return
        }
        case 'corrupt':
          up.pipe(
            new ByteWatcher((chunk, pos, push, done) => {
              if (fault.offset >= pos && fault.offset < pos + chunk.length) {
                const copy = Buffer.from(chunk)
                copy[fault.offset - pos] ^= 0xff
                push(copy)
              } else push(chunk)
              done()
            }),
          ).pipe(res)
          return
        case 'trickle':
          up.pipe(trickle(fault.chunkBytes, fault.delayMs)).pipe(res)
          return
        case 'stall': {
          let stalled = false
          up.pipe(
            new ByteWatcher((chunk, pos, push, done) => {
              if (stalled || pos + chunk.length <= fault.afterBytes) {
                push(chunk)
                done()
                return
              }
              stalled = true
              const cut = Math.max(0, fault.afterBytes - pos)
              push(chunk.subarray(0, cut))
              setTimeout(() => {
                push(chunk.subarray(cut))
                done()
              }, fault.ms)
            }),
          ).pipe(res)
          return
        }
      }
    })
  }

  const server: Server = createServer(handle)
  server.keepAliveTimeout = 5000
  server.on('connection', (socket: Socket) => {
    if (downMode === 'reset') {
      downResets++
      resetSocket(socket)
      return
    }
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
  })
  server.on('clientError', (_err, socket) => socket.destroy())

  const host = options.host ?? '127.0.0.1'
  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve((server.address() as AddressInfo).port)
      })
    })
  const port = await listen(options.port ?? 0)
  let listening = true

  const dropAll = (): void => {
    for (const s of sockets) resetSocket(s)
    sockets.clear()
    for (const u of upstreams) u.destroy()
    upstreams.clear()
  }

  return {
    url: `http://${host}:${port}`,
    host: `${host}:${port}`,
    port,
    log,
    setRules(next) {
      rules = next.map((r) => ({...r, seen: 0, applied: 0}))
      appliedCount.clear()
    },
    applied: (name) => appliedCount.get(name) ?? 0,
    get downResets() {
      return downResets
    },
    async down(mode) {
      dropAll()
      if (mode === 'reset') {
        downMode = 'reset'
        return
      }
      if (listening) {
        listening = false
        await new Promise<void>((resolve) => server.close(() => resolve()))
      }
    },
    async up() {
      downMode = undefined
      if (!listening) {
        await listen(port)
        listening = true
      }
    },
    async close() {
      dropAll()
      if (listening) await new Promise<void>((resolve) => server.close(() => resolve()))
      listening = false
    },
  }
}

/**
 * "Object storage" on another host (127.0.0.2 by default): serves `/<repo path>/blobs/<digest>?X-Amz-Signature=…`
 * by fetching the blob from the registry itself with its own credentials. Like S3 with a pre-signed URL, it
 * answers 400 when the request also carries an Authorization header, and 403 without the signature.
 */
export interface ObjectStore {
  url: string
  /** Authorization headers it received (should stay empty). */
  authorizationsSeen: string[]
  gets: number
  /** The Location a registry would redirect GET /v2/<repo>/blobs/<digest> to. */
  location(registryPath: string): string
  close(): Promise<void>
}

export async function startObjectStore(registry: string, credentials?: {username: string; password: string}, host = '127.0.0.2'): Promise<ObjectStore> {
  const upstream = new URL(registry)
  const authorizationsSeen: string[] = []
  let gets = 0
  const server = createServer((req, res) => {
    gets++
    const url = new URL(req.url ?? '/', 'http://store')
    if (req.headers.authorization) {
      authorizationsSeen.push(String(req.headers.authorization))
      res.writeHead(400, {'content-type': 'application/xml'}).end('<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>')
      return
    }
    if (url.searchParams.get('X-Amz-Signature') !== 'test-signature') {
      res.writeHead(403, {'content-type': 'application/xml'}).end('<Error><Code>AccessDenied</Code></Error>')
      return
    }
    const headers: Record<string, string> = {}
    if (credentials) headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
    if (req.headers.range) headers.range = String(req.headers.range)
    const up = httpRequest({host: upstream.hostname, port: upstream.port, method: req.method, path: `/v2${url.pathname}`, headers}, (answer) => {
      const out: Record<string, string | string[]> = {}
      for (const k of ['content-length', 'content-range', 'accept-ranges']) if (answer.headers[k]) out[k] = answer.headers[k] as string
      res.writeHead(answer.statusCode ?? 502, {'content-type': 'application/octet-stream', ...out})
      answer.pipe(res)
    })
    up.on('error', () => res.destroy())
    up.end()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const base = `http://${host}:${port}`
  return {
    url: base,
    authorizationsSeen,
    get gets() {
      return gets
    },
    location: (registryPath) => `${base}${registryPath.replace(/^\/v2/, '').replace(/\?.*$/, '')}?X-Amz-Signature=test-signature&X-Amz-Expires=300`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
