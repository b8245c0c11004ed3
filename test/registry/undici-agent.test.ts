/** The lean undici load (see src/registry/undici-agent.ts): taken with the locked undici, and a working dispatcher. */
import test from 'ava'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {envHttpProxyAgentClass, undiciLoad} from '../../src/registry/undici-agent.js'

test('the agent is loaded without undici\'s index, and its request() talks HTTP', async (t) => {
  const Agent = envHttpProxyAgentClass()
  t.is(undiciLoad, 'lean', 'undici moved its files: update src/registry/undici-agent.ts (start-up is slower until then)')
  const server = createServer((req, res) => res.end(`${req.method} ${req.url}`))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const agent = new Agent()
  try {
    const {port} = server.address() as AddressInfo
    const res = await agent.request({origin: `http://127.0.0.1:${port}`, path: '/v2/x?y=1', method: 'GET'})
    t.is(res.statusCode, 200)
    t.is(await res.body.text(), 'GET /v2/x?y=1')
  } finally {
    await agent.close()
    server.close()
  }
})

test('the same class on every call', (t) => {
  t.is(envHttpProxyAgentClass(), envHttpProxyAgentClass())
})

test('HEAD requests keep the connection alive (undici would close it after each)', async (t) => {
  const {Transport} = await import('../../src/registry/transport.js')
  let connections = 0
  const server = createServer((req, res) => {
    res.writeHead(req.method === 'HEAD' ? 200 : 404, {'content-length': '0'})
    res.end()
  })
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const transport = new Transport({retry: {attempts: 1, baseDelayMs: 1, maxDelayMs: 1}, log: () => undefined})
  try {
    const {port} = server.address() as AddressInfo
    for (let i = 0; i < 6; i++) {
      const res = await transport.sendOnce({method: 'HEAD', url: new URL(`http://127.0.0.1:${port}/v2/x/blobs/sha256:${String(i).repeat(64)}`)})
      t.is(res.status, 200)
      await res.body.dump()
    }
    // One connection, or two when the pool opens a second before the first is handed back: never one per HEAD.
    t.true(connections <= 2, `${connections} connections for 6 HEAD requests`)
  } finally {
    await transport.close()
    server.close()
  }
})
