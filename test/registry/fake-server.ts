/**
 * A tiny in-process HTTP server for fault injection (resets, 429s, corrupt bytes, redirects, token
 * flows). Real registry behaviour is tested against the real peers in real-peers.test.ts.
 */
import {createServer, type IncomingMessage, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'

export interface SeenRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: Buffer
}

export interface FakeServer {
  url: string
  host: string
  requests: SeenRequest[]
  close(): Promise<void>
}

export type Handler = (req: IncomingMessage & {body: Buffer}, res: ServerResponse) => unknown

export async function startServer(handler: Handler): Promise<FakeServer> {
  const requests: SeenRequest[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      requests.push({method: req.method ?? '', url: req.url ?? '', headers: req.headers, body})
      Promise.resolve(handler(Object.assign(req, {body}), res)).catch((error) => {
        res.statusCode = 500
        res.end(String(error))
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Deterministic pseudo-random bytes (xorshift), so blob contents and digests are reproducible. */
export function deterministicBytes(size: number, seed = 1): Buffer {
  const buf = Buffer.allocUnsafe(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    buf[i] = x & 0xff
  }
  return buf
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = Buffer.from(JSON.stringify(body))
  res.writeHead(status, {'content-type': 'application/json', 'content-length': String(text.length), ...headers})
  res.end(text)
}
