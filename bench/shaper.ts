/**
 * A shaping TCP proxy on loopback that stands in for a WAN link, for the benchmarks (bench/wan.ts, bench/push.ts
 * --rtt-ms). This kernel has no `sch_netem` (`tc qdisc add … netem` answers "Specified qdisc kind is unknown"; tbf
 * works, so bandwidth alone could be shaped in a netns, not latency), so the link is simulated here instead:
 * - every chunk is delayed by RTT/2 in each direction, and bytes never overtake each other within a connection;
 * - a new connection costs one RTT before its first byte (the TCP handshake);
 * - each direction is one token bucket shared by all connections (as they would share a real link): the downlink
 *   (registry → client) at `downMbit`, the uplink (client → registry) at `upMbit` (unshaped when not given).
 */
import {createServer, connect, type AddressInfo, type Socket} from 'node:net'

export interface LinkOptions {
  rttMs: number
  /** Registry → client. */
  downMbit: number
  /** Client → registry; unlimited when undefined. */
  upMbit?: number
}

export interface Shaper {
  port: number
  close: () => Promise<void>
}

/** One direction of the link: when it is free again (ms, performance clock), and how fast it drains. */
class Bucket {
  private freeAt = 0
  constructor(private readonly bytesPerMs: number) {}

  /** When `bytes` queued now have crossed the link (ms). */
  send(bytes: number, now: number): number {
    const start = Math.max(now, this.freeAt)
    this.freeAt = start + bytes / this.bytesPerMs
    return this.freeAt
  }
}

const bucketOf = (mbit: number | undefined): Bucket | undefined => (mbit === undefined ? undefined : new Bucket((mbit * 1e6) / 8 / 1000))

export async function startShaper(target: {host: string; port: number}, link: LinkOptions): Promise<Shaper> {
  const down = bucketOf(link.downMbit)
  const up = bucketOf(link.upMbit)
  const sockets = new Set<Socket>()
  const oneWay = link.rttMs / 2
  const now = (): number => performance.now()

  /** One FIFO per direction of a connection, drained by one timer, so bytes never overtake each other. */
  const relay = (from: Socket, to: Socket, bucket: Bucket | undefined): void => {
    const queue: Array<{at: number; chunk: Buffer | null}> = []
    let queued = 0
    let timer: NodeJS.Timeout | undefined
    const drain = (): void => {
      timer = undefined
      while (queue.length > 0 && queue[0].at <= now()) {
        const {chunk} = queue.shift()!
        if (chunk === null) {
          to.end()
          continue
        }
        queued -= chunk.length
        if (!to.destroyed) to.write(chunk)
      }
      if (queued < 1024 * 1024) from.resume()
      if (queue.length > 0) timer = setTimeout(drain, Math.max(1, queue[0].at - now()))
    }
    const enqueue = (chunk: Buffer | null): void => {
      let at = now() + oneWay
      if (bucket && chunk) at = Math.max(at, bucket.send(chunk.length, now()) + oneWay)
      if (queue.length > 0) at = Math.max(at, queue[queue.length - 1].at)
      queue.push({at, chunk})
      if (chunk) queued += chunk.length
      if (queued > 4 * 1024 * 1024) from.pause()
      timer ??= setTimeout(drain, Math.max(1, queue[0].at - now()))
    }
    from.on('data', (chunk: Buffer) => enqueue(chunk))
    from.on('end', () => enqueue(null))
    from.on('error', () => to.destroy())
  }

  const server = createServer((client) => {
    sockets.add(client)
    client.pause()
    // TCP handshake + the first request's trip: the upstream connection opens one RTT later.
    setTimeout(() => {
      const upstream = connect(target.port, target.host, () => {
        relay(client, upstream, up)
        relay(upstream, client, down)
        client.resume()
      })
      sockets.add(upstream)
      upstream.on('error', () => client.destroy())
      upstream.on('close', () => sockets.delete(upstream))
    }, link.rttMs)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => undefined)
  })
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()))
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy()
        server.close(() => res())
      }),
  }
}
