/**
 * `kubeferry serve` as a library: open bundles into a Catalog, then answer the read-only distribution API over
 * node:http(s). Every response carries `Docker-Distribution-API-Version: registry/2.0`; every request gets one
 * access-log line; malformed HTTP gets a 400 JSON answer and the server keeps serving others.
 */
import {createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import type {Socket} from 'node:net'
import {KubeferryError} from '../oci/errors.js'
import {BundleReader} from '../bundle/reader.js'
import {AccessLog} from './access-log.js'
import {Catalog} from './catalog.js'
import {errorBody, RegistryHttpError, sendError} from './errors.js'
import {handleRoute, type HandlerResult} from './handlers.js'
import {parseRoute} from './routes.js'


/** listen()'s errors in words (the code stays, for searching). */
const LISTEN_REASONS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (EADDRINUSE)',
  EADDRNOTAVAIL: 'that address is not one of this machine (EADDRNOTAVAIL)',
  EACCES: 'permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE (EACCES)',
}
export interface LoadOptions {
  /** Also answer every image under this path (`k8s` → `k8s/pause`). */
  prefix?: string
  /** Check of each bundle before it is indexed (`assertBundleValid`, full or quick); throws to refuse the bundle. */
  verify?: (path: string) => Promise<unknown>
  /**
   * True when `verify` hashed every blob (default: true when `verify` is given). Otherwise (`--no-verify`) each blob
   * is hashed the first time it is served.
   */
  contentVerified?: boolean
}

/** Open and index the bundles (first given wins a conflicting tag). Throws KubeferryError for a bundle that fails. */
export async function loadCatalog(paths: string[], options: LoadOptions = {}): Promise<Catalog> {
  if (paths.length === 0) throw new KubeferryError('INVALID_ARGUMENT', 'no bundle given', {hint: 'kubeferry serve BUNDLE.tar [BUNDLE.tar…]'})
  const catalog = new Catalog({prefix: options.prefix, contentVerified: options.contentVerified ?? Boolean(options.verify)})
  for (const path of paths) {
    if (options.verify) await options.verify(path)
    await catalog.addBundle(await BundleReader.open(path))
  }
  catalog.checkRelied()
  return catalog
}

export interface ListenAddress {
  host: string
  port: number
}

/** `127.0.0.1:5000`, `[::1]:5000`, `0.0.0.0:5000`, `:5000` (all interfaces), `5000` (loopback). */
export function parseListen(text: string): ListenAddress {
  const fail = (): never => {
    throw new KubeferryError('INVALID_ARGUMENT', `invalid listen address "${text}"`, {hint: 'use HOST:PORT, e.g. 127.0.0.1:5000, 0.0.0.0:5000 or [::]:5000'})
  }
  let host = '127.0.0.1'
  let portText = text
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text)
  if (v6) {
    host = v6[1]
    portText = v6[2]
  } else if (text.includes(':')) {
    const colon = text.lastIndexOf(':')
    host = text.slice(0, colon) || '0.0.0.0'
    portText = text.slice(colon + 1)
    if (!/^[a-zA-Z0-9.-]+$/.test(host)) fail()
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) fail()
  return {host, port: Number(portText)}
}

export interface ServerOptions extends ListenAddress {
  tls?: {cert: string | Buffer; key: string | Buffer}
  log?: AccessLog
  /**
   * A connection on which nothing moves for this long is closed (default 2 minutes). Without it a client that stops
   * reading mid-blob would hold its response (two 256 KiB buffers and a file handle) for ever; a slow reader that
   * makes progress is never cut.
   */
  idleTimeoutMs?: number
}

export interface RunningServer {
  /** `http://127.0.0.1:5000` (the port actually bound). */
  url: string
  host: string
  port: number
  server: Server
  /** Stop accepting, let running responses finish (up to graceMs), then close every connection. */
  close(graceMs?: number): Promise<void>
}

const API_VERSION_HEADER = 'Docker-Distribution-API-Version'

function badRequestRaw(): string {
  const body = errorBody('BAD_REQUEST', 'malformed or oversize HTTP request')
  return `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${API_VERSION_HEADER}: registry/2.0\r\nConnection: close\r\n\r\n${body}`
}

function remoteOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? '-'
}

export async function startRegistryServer(catalog: Catalog, options: ServerOptions): Promise<RunningServer> {
  const log = options.log ?? new AccessLog(false)
  let closing = false
  let active = 0
  let drained: (() => void) | undefined

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint()
    active++
    const method = req.method ?? 'GET'
    const url = req.url ?? '/'
    res.setHeader(API_VERSION_HEADER, 'registry/2.0')
    res.setHeader('X-Content-Type-Options', 'nosniff')
    if (closing) res.setHeader('Connection', 'close')
    let result: HandlerResult = {bytes: 0}
    const closed = new Promise<void>((resolve) => res.once('close', resolve))
    const logWhenDone = async (answered: Promise<void>): Promise<void> => {
      // 'close' may come before the handler's promise settles (or after, for a stream): log once both are in.
      await Promise.all([closed, answered])
      active--
      log.request({
        time: new Date().toISOString(),
        remote: remoteOf(req),
        method,
        path: url,
        status: res.statusCode,
        bytes: result.bytes,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
        ...(req.headers['user-agent'] ? {userAgent: String(req.headers['user-agent']).slice(0, 200)} : {}),
        ...(result.error ? {error: result.error} : {}),
      })
      if (closing && active === 0) drained?.()
    }
    // A body sent to a read-only registry is never read: close the connection after answering.
    if (method !== 'GET' && method !== 'HEAD') res.setHeader('Connection', 'close')
    const answer = async (): Promise<void> => {
      try {
        const route = parseRoute(method, url)
        result = await handleRoute(req, res, catalog, route)
      } catch (error) {
        if (res.headersSent) {
          res.destroy()
          result = {bytes: result.bytes, error: error instanceof Error ? error.message : String(error)}
          return
        }
        if (error instanceof RegistryHttpError) {
          result = {bytes: sendError(res, method, error)}
          return
        }
        log.event('warning', `internal error answering ${method} ${url.slice(0, 200)}: ${error instanceof Error ? error.message : String(error)}`)
        result = {bytes: sendError(res, method, new RegistryHttpError(500, 'UNSUPPORTED', 'internal server error'))}
      }
    }
    void logWhenDone(answer())
  }

  const serverOptions = {maxHeaderSize: 16 * 1024, headersTimeout: 30_000, requestTimeout: 60_000, keepAliveTimeout: 30_000}
  const server: Server = options.tls
    ? (createHttpsServer({...serverOptions, cert: options.tls.cert, key: options.tls.key}, onRequest) as unknown as Server)
    : createHttpServer(serverOptions, onRequest)
  // No 'timeout' listener: node:http destroys an idle socket itself, which fails the pending body writes.
  server.setTimeout(options.idleTimeoutMs ?? 120_000)

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    socket.end(badRequestRaw())
    log.request({time: new Date().toISOString(), remote: socket.remoteAddress ?? '-', method: '-', path: '-', status: 400, bytes: 0, ms: 0, error: error.code ?? error.message})
  })

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(
        new KubeferryError('IO', `cannot listen on ${options.host}:${options.port}: ${LISTEN_REASONS[error.code ?? ''] ?? error.code ?? error.message}`, {
          hint: error.code === 'EADDRINUSE' ? `another process uses that port (ss -ltnp 'sport = :${options.port}' shows which); pick another with --listen HOST:PORT` : 'check the --listen address: an address of this machine (or 0.0.0.0 for all) and a free port',
        }),
      )
    }
    server.once('error', onError)
    server.listen(options.port, options.host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : options.port
  const urlHost = options.host.includes(':') ? `[${options.host}]` : options.host
  const url = `${options.tls ? 'https' : 'http'}://${urlHost}:${port}`

  const close = async (graceMs = 10_000): Promise<void> => {
    if (closing) return
    closing = true
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeIdleConnections()
    if (active > 0) {
      await new Promise<void>((resolve) => {
        drained = resolve
        setTimeout(resolve, graceMs).unref()
      })
    }
    server.closeAllConnections()
    await stopped
  }
  return {url, host: options.host, port, server, close}
}
