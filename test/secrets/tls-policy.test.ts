/**
 * TLS policy, observed on the wire: a registry with a non-loopback name is reached only over TLS unless it is named
 * with --insecure-registry; loopback registries (127.0.0.0/8, ::1, localhost) may use plain HTTP by default, as docker
 * allows. No traffic leaves the machine: HTTPS_PROXY/HTTP_PROXY point at a local proxy that answers CONNECT, looks at
 * the first bytes the client sends through the tunnel (0x16 = a TLS ClientHello, a letter = plain HTTP), and pipes
 * plain HTTP to the open registry peer so that the insecure path can really succeed.
 */
import test from 'ava'
import {createServer, type Server} from 'node:http'
import {connect, type AddressInfo, type Socket} from 'node:net'
import {peerTest} from '../harness/peers.js'
import {runCli, STACK_LINE} from '../faults/helpers.js'

interface Tunnel {
  target: string
  first: 'tls' | 'plain' | 'none'
  plainRequest?: string
}

async function startTunnelProxy(plainUpstream: string): Promise<{url: string; tunnels: Tunnel[]; close: () => Promise<void>}> {
  const tunnels: Tunnel[] = []
  const sockets = new Set<Socket>()
  const upstream = new URL(plainUpstream)
  const server: Server = createServer((req, res) => {
    // An absolute-URI request (plain HTTP through the proxy without a tunnel).
    tunnels.push({target: String(req.url), first: 'plain', plainRequest: `${req.method} ${req.url}`})
    res.writeHead(502).end()
  })
  server.on('connect', (req, client: Socket) => {
    sockets.add(client)
    const tunnel: Tunnel = {target: String(req.url), first: 'none'}
    tunnels.push(tunnel)
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    client.once('data', (chunk: Buffer) => {
      if (chunk[0] === 0x16) {
        tunnel.first = 'tls'
        client.destroy()
        return
      }
      tunnel.first = 'plain'
      tunnel.plainRequest = chunk.toString('latin1').split('\r\n')[0]
      const up = connect(Number(upstream.port), upstream.hostname, () => {
        up.write(chunk)
        client.pipe(up).pipe(client)
      })
      sockets.add(up)
      up.on('error', () => client.destroy())
    })
    client.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tunnels,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

const REMOTE = 'registry.kubeferry-test.invalid:5000'

function proxyEnv(url: string): NodeJS.ProcessEnv {
  return {HTTPS_PROXY: url, HTTP_PROXY: url, https_proxy: url, http_proxy: url, NO_PROXY: '', no_proxy: ''}
}

peerTest('TLS: a non-loopback registry is only ever spoken to over TLS without --insecure-registry', ['registries'], async (t, peers) => {
  const proxy = await startTunnelProxy(peers.registries.open.url)
  t.teardown(() => proxy.close())
  const r = await runCli(['resolve', `${REMOTE}/pause:3.10`], {env: proxyEnv(proxy.url)})
  t.not(r.code, 0)
  t.regex(r.stderr, /^error: .*registry\.kubeferry-test\.invalid/m)
  t.notRegex(r.stderr, STACK_LINE)
  t.true(proxy.tunnels.length > 0, 'the client went through the proxy')
  t.true(proxy.tunnels.some((x) => x.first === 'tls'), 'a TLS handshake was attempted')
  t.deepEqual(proxy.tunnels.filter((x) => x.first === 'plain'), [], 'no plain HTTP to a host not named --insecure-registry')
})

peerTest('TLS: --insecure-registry HOST allows plain HTTP to exactly that host (after trying TLS)', ['registries'], async (t, peers) => {
  const proxy = await startTunnelProxy(peers.registries.open.url)
  t.teardown(() => proxy.close())
  const r = await runCli(['resolve', `${REMOTE}/pause:3.10`, '--insecure-registry', REMOTE, '--json'], {env: proxyEnv(proxy.url)})
  t.is(r.code, 0, r.stderr)
  const image = peers.images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!
  t.true(r.stdout.includes(image.digest), 'resolved through plain HTTP to the same digest')
  t.true(proxy.tunnels.some((x) => x.first === 'plain' && /^GET \/v2\//.test(x.plainRequest ?? '')))

  // Another host is not covered by that flag.
  const other = await runCli(['resolve', 'other.kubeferry-test.invalid:5000/pause:3.10', '--insecure-registry', REMOTE], {env: proxyEnv(proxy.url)})
  t.not(other.code, 0)
  t.deepEqual(proxy.tunnels.filter((x) => x.target.startsWith('other.') && x.first === 'plain'), [])
})

peerTest('TLS: loopback registries may use plain HTTP by default (as docker does)', ['registries'], async (t, peers) => {
  const r = await runCli(['resolve', `${peers.registries.open.host}/pause:3.10`, '--json'])
  t.is(r.code, 0, r.stderr)
})

test('TLS: a TLS registry with a certificate nobody trusts is refused with a hint, not skipped', async (t) => {
  // A local TLS server with a self-signed certificate made on the fly by openssl.
  const {execFileSync} = await import('node:child_process')
  const {mkdtemp, readFile, rm} = await import('node:fs/promises')
  const {tmpdir} = await import('node:os')
  const {join} = await import('node:path')
  const {createServer: createTls} = await import('node:https')
  const dir = await mkdtemp(join(tmpdir(), 'kf-tls-'))
  t.teardown(() => rm(dir, {recursive: true, force: true}))
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], {stdio: 'pipe'})
  } catch {
    t.log('SKIPPED: openssl is not available')
    t.pass()
    return
  }
  const server = createTls({key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem'))}, (_req, res) => res.writeHead(200).end('{}'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as AddressInfo).port
  // Through the proxy env so the client sees a non-loopback name; the proxy tunnels TLS to our server.
  const tunnelServer = createServer()
  tunnelServer.on('connect', (_req, client: Socket) => {
    const up = connect(port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      client.pipe(up).pipe(client)
    })
    up.on('error', () => client.destroy())
    client.on('error', () => up.destroy())
  })
  await new Promise<void>((resolve) => tunnelServer.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => new Promise<void>((resolve) => {
    tunnelServer.closeAllConnections()
    tunnelServer.close(() => resolve())
  }))
  const proxyUrl = `http://127.0.0.1:${(tunnelServer.address() as AddressInfo).port}`
  const r = await runCli(['resolve', `${REMOTE}/pause:3.10`], {env: proxyEnv(proxyUrl)})
  t.not(r.code, 0)
  t.regex(r.stderr, /^error: .*TLS verification failed/m)
  t.regex(r.stderr, /--ca-file|--insecure-registry/)
  t.notRegex(r.stderr, STACK_LINE)
})
