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
