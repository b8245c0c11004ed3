/** HTTPS_PROXY/HTTP_PROXY/NO_PROXY are honoured (own file: the variables are process-wide). */
import test from 'ava'
import {createServer, Socket} from 'node:net'
import type {AddressInfo} from 'node:net'
import {MediaType} from '../../src/oci/media-types.js'
import {anonymousCredentials} from '../../src/registry/auth/credentials.js'
import {RegistryClient} from '../../src/registry/client.js'
import {parseReference} from '../../src/oci/reference.js'
import {startServer} from './fake-server.js'

test.serial('requests go through HTTP_PROXY (CONNECT) unless NO_PROXY names the host', async (t) => {
  const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OciManifest, config: {mediaType: MediaType.OciConfig, digest: `sha256:${'a'.repeat(64)}`, size: 2}, layers: []}))
  const registry = await startServer((_req, res) => {
    res.writeHead(200, {'content-type': MediaType.OciManifest})
    res.end(manifest)
  })
  const tunnels: string[] = []
  const sockets = new Set<Socket>()
  const proxy = createServer((client) => {
    sockets.add(client)
    client.once('data', (head) => {
      const line = head.toString('latin1').split('\r\n')[0]
      const m = /^CONNECT ([^ ]+) HTTP/.exec(line)
      if (!m) return client.destroy()
      tunnels.push(m[1])
      const [h, p] = m[1].split(':')
      if (h !== '127.0.0.1') return client.destroy() // this test proxy only ever reaches loopback
      const upstream = new Socket()
      sockets.add(upstream)
      upstream.connect(Number(p), h, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        upstream.pipe(client)
        client.pipe(upstream)
      })
      upstream.on('error', () => client.destroy())
      client.on('error', () => upstream.destroy())
    })
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
  const saved = {HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy, NO_PROXY: process.env.NO_PROXY, no_proxy: process.env.no_proxy}
  t.teardown(async () => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]
    else process.env[k] = v
    for (const s of sockets) s.destroy()
    proxy.close()
    await registry.close()
  })
  delete process.env.http_proxy
  delete process.env.no_proxy
  process.env.HTTP_PROXY = proxyUrl
  process.env.NO_PROXY = ''
  const ref = parseReference(`${registry.host}/lib/app:1`)
  const viaProxy = new RegistryClient({credentials: anonymousCredentials, mirrors: {[registry.host]: [registry.url]}, retry: {attempts: 1}})
  t.is((await viaProxy.getManifest(ref)).kind, 'manifest')
  await viaProxy.close()
  t.deepEqual(tunnels, [registry.host])

  process.env.NO_PROXY = '127.0.0.1'
  const direct = new RegistryClient({credentials: anonymousCredentials, mirrors: {[registry.host]: [registry.url]}, retry: {attempts: 1}})
  t.is((await direct.getManifest(ref)).kind, 'manifest')
  await direct.close()
  t.is(tunnels.length, 1)
})
