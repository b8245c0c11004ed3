/**
 * Fault matrix for `kubeferry push`: the built CLI pushes a 2-platform bundle into the REAL docker-registry peers
 * through the fault-injecting proxy (the destination is the proxy's host:port). Outcome is always either exit 0 with
 * every name at the bundle's digest (checked on the registry itself, children and blobs included), or a clear error
 * where nothing printed as pushed is missing — and a rerun without faults then completes.
 */
import test, {type ExecutionContext} from 'ava'
import {randomBytes} from 'node:crypto'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {loadPeers, missingPeer, peerTest, type Peers, type RegistryPeer, type TokenRegistryPeer} from '../harness/peers.js'
import {assertCleanError, runCli, STACK_LINE, type CliResult} from './helpers.js'
import {startFaultProxy, type FaultProxy, type Rule} from './proxy.js'
import {MANIFEST_ACCEPT} from '../../src/oci/media-types.js'

const IMAGES = ['registry.k8s.io/pause:3.10', 'registry.k8s.io/coredns/coredns:v1.11.3', 'docker.io/library/busybox:1.36']
const ACCEPT = MANIFEST_ACCEPT.join(', ')

let work: string
let bundle: string | undefined
/** repository (without prefix) → tag → digest, as push should place them. */
let expected: Array<{repository: string; tag: string; digest: string}> = []
let bigBlobSize = 0

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-faults-push-'))
  const peers = loadPeers()
  if (missingPeer(['registries']) || !peers) return
  const open = peers.registries.open.url
  bundle = join(work, 'bundle.tar')
  const r = await runCli([
    'create', ...IMAGES.flatMap((i) => ['--image', i]), '--platform', 'linux/amd64', '--platform', 'linux/arm64/v8',
    '--mirror', `registry.k8s.io=${open}`, '--mirror', `docker.io=${open}`, '--cache-dir', join(work, 'cache'), '--no-progress', '-o', bundle,
  ])
  if (r.code !== 0) throw new Error(`create failed: ${r.stderr}`)
  const chosen = peers.images.filter((i) => IMAGES.includes(i.name))
  bigBlobSize = Math.max(...chosen.flatMap((i) => i.platforms.flatMap((p) => p.layers.map((l) => l.size))))
  for (const image of chosen) {
    expected.push({repository: image.repository, tag: image.tag, digest: image.digest})
    if (image.repository === 'coredns/coredns') expected.push({repository: 'coredns', tag: image.tag, digest: image.digest})
  }
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

function basicAuth(peer: RegistryPeer): Record<string, string> {
  return peer.username ? {authorization: `Basic ${Buffer.from(`${peer.username}:${peer.password}`).toString('base64')}`} : {}
}

/** A pull token for `repo` from the token peer (Basic credentials to its realm). */
async function bearer(peer: TokenRegistryPeer, repo: string): Promise<Record<string, string>> {
  const url = new URL(peer.realm)
  url.searchParams.set('service', peer.service)
  url.searchParams.set('scope', `repository:${repo}:pull`)
  const res = await fetch(url, {headers: basicAuth(peer)})
  const body = (await res.json()) as {token?: string; access_token?: string}
  return {authorization: `Bearer ${body.token ?? body.access_token}`}
}

/** Whether `repo:tag` is on the registry at `digest` with every child manifest and blob present. */
async function complete(peer: RegistryPeer, repo: string, tag: string, digest: string): Promise<string | undefined> {
  const auth = 'realm' in peer ? await bearer(peer as TokenRegistryPeer, repo) : basicAuth(peer)
  const get = async (path: string, method = 'GET'): Promise<Response> => fetch(`${peer.url}/v2/${path}`, {method, headers: {accept: ACCEPT, ...auth}})
  const top = await get(`${repo}/manifests/${tag}`)
  if (top.status !== 200) return `${repo}:${tag}: HTTP ${top.status}`
  const got = top.headers.get('docker-content-digest')
  if (got !== digest) return `${repo}:${tag} is ${got}, expected ${digest}`
  const index = (await top.json()) as {manifests?: Array<{digest: string}>}
  for (const m of index.manifests ?? []) {
    const res = await get(`${repo}/manifests/${m.digest}`)
    if (res.status !== 200) return `${repo}@${m.digest}: HTTP ${res.status}`
    const manifest = (await res.json()) as {config: {digest: string}; layers: Array<{digest: string}>}
    for (const blob of [manifest.config, ...manifest.layers]) {
      const head = await get(`${repo}/blobs/${blob.digest}`, 'HEAD')
      if (head.status !== 200) return `${repo} blob ${blob.digest}: HTTP ${head.status}`
    }
  }
  return undefined
}

async function assertAllPushed(t: ExecutionContext, peer: RegistryPeer, prefix: string, what: string): Promise<void> {
  for (const e of expected) {
    const problem = await complete(peer, `${prefix}/${e.repository}`, e.tag, e.digest)
    t.is(problem, undefined, `${what}: ${problem}`)
  }
}

/** Every `NAME@sha256:…` line push printed on stdout names something that really is there. */
async function assertReportedIsTrue(t: ExecutionContext, r: CliResult, peer: RegistryPeer, proxyHost: string, what: string): Promise<void> {
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+):([\w.-]+)@(sha256:[a-f0-9]{64})$/.exec(line.trim())
    if (!m) continue
    const repo = m[1].slice(proxyHost.length + 1)
    const problem = await complete(peer, repo, m[2], m[3])
    t.is(problem, undefined, `${what}: reported ${line} but ${problem}`)
  }
}

async function catalog(peer: RegistryPeer): Promise<string[]> {
  const res = await fetch(`${peer.url}/v2/_catalog?n=10000`, {headers: basicAuth(peer)})
  return ((await res.json()) as {repositories?: string[]}).repositories ?? []
}

interface PushCase {
  rules: Rule[]
  registry?: 'open' | 'htpasswd' | 'token'
  user?: {username: string; password: string}
  extra?: string[]
  expect?: 'pushed' | 'error'
  error?: RegExp
  during?: (proxy: FaultProxy) => Promise<void>
}

async function pushCase(t: ExecutionContext, peers: Peers, name: string, c: PushCase): Promise<{r: CliResult; proxy: FaultProxy; prefix: string}> {
  t.truthy(bundle, 'the bundle was built')
  const peer = peers.registries[c.registry ?? 'open']
  const proxy = await startFaultProxy(peer.url)
  t.teardown(() => proxy.close())
  proxy.setRules(c.rules)
  const prefix = `kf-faults-${name}-${randomBytes(3).toString('hex')}`
  const args = ['push', bundle!, `${proxy.host}/${prefix}`, ...(c.user ? ['--username', c.user.username, '--password-stdin'] : []), ...(c.extra ?? [])]
  const running = runCli(args, {stdin: c.user ? `${c.user.password}\n` : ''})
  if (c.during) await c.during(proxy)
  const r = await running
  t.log(`${name}: exit ${r.code} in ${r.ms} ms; ${proxy.log.length} requests; ${r.code === 0 ? 'ok' : r.stderr.split('\n').find((l) => l.startsWith('error:'))}`)
  t.notRegex(r.stderr, STACK_LINE)
  if (r.code === 0) {
    t.not(c.expect, 'error', `${name}: expected an error, push succeeded`)
    await assertAllPushed(t, peer, prefix, name)
  } else {
    t.not(c.expect, 'pushed', `${name}: expected success, got exit ${r.code}: ${r.stderr}`)
    assertCleanError(t, r, c.error ?? /./, name)
    await assertReportedIsTrue(t, r, peer, proxy.host, name)
    // The rerun, faults gone, completes.
    proxy.setRules([])
    await proxy.up()
    const again = await runCli(args, {stdin: c.user ? `${c.user.password}\n` : ''})
    t.is(again.code, 0, `${name}: rerun failed: ${again.stderr}`)
    await assertAllPushed(t, peer, prefix, `${name} (rerun)`)
  }
  return {r, proxy, prefix}
}

const UPLOAD = /\/blobs\/uploads\//
const bigUpload = (req: {headers: Record<string, string | string[] | undefined>}): boolean => Number(req.headers['content-length'] ?? 0) >= bigBlobSize || req.headers['content-length'] === undefined

peerTest('push: connection reset mid-upload is retried → every name at its digest', ['registries'], async (t, peers) => {
  const {proxy} = await pushCase(t, peers, 'reset', {rules: [{name: 'reset', method: /PATCH|PUT/, path: UPLOAD, when: bigUpload, times: 1, fault: {kind: 'request-reset', afterBytes: 300_000}}], expect: 'pushed'})
  t.is(proxy.applied('reset'), 1)
})

peerTest('push: 429 with Retry-After on manifest PUT is waited out → every name at its digest', ['registries'], async (t, peers) => {
  const {proxy} = await pushCase(t, peers, '429', {rules: [{name: '429', method: 'PUT', path: /\/manifests\//, times: 2, fault: {kind: 'status', status: 429, headers: {'retry-after': '1'}}}], expect: 'pushed'})
  t.is(proxy.applied('429'), 2)
})

peerTest('push: bursts of 503 on HEAD and upload start are retried → every name at its digest', ['registries'], async (t, peers) => {
  const {proxy} = await pushCase(t, peers, '503', {
    rules: [
      {name: '503-head', method: 'HEAD', times: 3, fault: {kind: 'status', status: 503}},
      {name: '503-post', method: 'POST', path: UPLOAD, times: 3, fault: {kind: 'status', status: 503}},
    ],
    expect: 'pushed',
  })
  t.is(proxy.applied('503-head'), 3)
  t.is(proxy.applied('503-post'), 3)
})

peerTest('push: an upload cut short (connection closed mid-body) → pushed, or a clear error and the rerun completes', ['registries'], async (t, peers) => {
  await pushCase(t, peers, 'truncate', {rules: [{method: /PATCH|PUT/, path: UPLOAD, when: bigUpload, times: 1, fault: {kind: 'request-truncate', afterBytes: 500_000}}]})
})

peerTest('push: one corrupted byte in every upload of a layer → clear digest error, nothing false reported; rerun completes', ['registries'], async (t, peers) => {
  await pushCase(t, peers, 'corrupt', {rules: [{method: /PATCH|PUT/, path: UPLOAD, when: bigUpload, fault: {kind: 'request-corrupt', offset: 1234}}], expect: 'error', error: /digest|invalid|400/i})
})

peerTest('push: one corrupted byte once → pushed, or a clear error and the rerun completes', ['registries'], async (t, peers) => {
  await pushCase(t, peers, 'corrupt-once', {rules: [{method: /PATCH|PUT/, path: UPLOAD, when: bigUpload, times: 1, fault: {kind: 'request-corrupt', offset: 99}}]})
})

peerTest('push: a slow uplink (trickled uploads) completes → every name at its digest', ['registries'], async (t, peers) => {
  const {r} = await pushCase(t, peers, 'trickle', {rules: [{method: /PATCH|PUT/, path: UPLOAD, when: bigUpload, fault: {kind: 'request-trickle', chunkBytes: 64 * 1024, delayMs: 60}}], expect: 'pushed'})
  t.true(r.ms > 900)
})

peerTest('push: a token that expires mid-push is refreshed → every name at its digest', ['registries'], async (t, peers) => {
  const reg = peers.registries.token
  const before = (await (await fetch(reg.statsUrl)).json()) as {byUser: Record<string, number>}
  const {r} = await pushCase(t, peers, 'token', {
    registry: 'token',
    user: reg.shortLived,
    extra: ['--concurrency', '1'],
    rules: [{method: /PATCH|PUT/, path: UPLOAD, fault: {kind: 'request-trickle', chunkBytes: 64 * 1024, delayMs: 330}}],
    expect: 'pushed',
  })
  const after = (await (await fetch(reg.statsUrl)).json()) as {byUser: Record<string, number>}
  const issued = (after.byUser[reg.shortLived.username] ?? 0) - (before.byUser[reg.shortLived.username] ?? 0)
  t.true(r.ms > (reg.shortLived.expiresIn + 1) * 1000, `the push outlived the token (${r.ms} ms)`)
  t.true(issued >= 2, `a fresh token was fetched after expiry (${issued} issued)`)
})

peerTest('push: a wrong password → clear authentication error, registry untouched', ['registries'], async (t, peers) => {
  const reg = peers.registries.htpasswd
  const before = await catalog(reg)
  const proxy = await startFaultProxy(reg.url)
  t.teardown(() => proxy.close())
  const r = await runCli(['push', bundle!, `${proxy.host}/kf-faults-wrongpw`, '--username', reg.username!, '--password-stdin'], {stdin: 'wrong-password-xyz\n'})
  // The refused user is named (a wrong password must not read like no password at all), the password never.
  assertCleanError(t, r, new RegExp(`refused user "${reg.username!}".*wrong user name or password`), 'wrong password')
  t.notRegex(r.stdout + r.stderr, /wrong-password-xyz/)
  t.deepEqual(await catalog(reg), before, 'no repository was created')
})

peerTest('push: registry down (connections reset) for a while, then back → every name at its digest', ['registries'], async (t, peers) => {
  await pushCase(t, peers, 'down-reset', {
    rules: [],
    expect: 'pushed',
    during: async (p) => {
      await p.down('reset')
      const deadline = Date.now() + 60_000
      while (p.downResets < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
      await new Promise((res) => setTimeout(res, 400))
      await p.up()
    },
  })
})

peerTest('push: registry going down mid-push (refused) → clear error; rerun when back completes', ['registries'], async (t, peers) => {
  await pushCase(t, peers, 'down-mid', {
    rules: [],
    expect: 'error',
    error: /cannot reach|refused|network/i,
    during: async (p) => {
      const deadline = Date.now() + 60_000
      while (!p.log.some((l) => UPLOAD.test(l.path)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5))
      await p.down('refuse')
    },
  })
})

peerTest('push: kill -9 mid-push, then rerun → every name at its digest', ['registries'], async (t, peers) => {
  const peer = peers.registries.open
  const proxy = await startFaultProxy(peer.url)
  t.teardown(() => proxy.close())
  proxy.setRules([{method: /PATCH|PUT/, path: UPLOAD, when: bigUpload, fault: {kind: 'request-trickle', chunkBytes: 32 * 1024, delayMs: 100}}])
  const prefix = `kf-faults-kill-${randomBytes(3).toString('hex')}`
  const args = ['push', bundle!, `${proxy.host}/${prefix}`]
  const r = await runCli(args, {
    onSpawn: (child) => {
      const timer = setInterval(() => {
        if (proxy.log.some((l) => l.fault)) {
          clearInterval(timer)
          setTimeout(() => child.kill('SIGKILL'), 300)
        }
      }, 10)
    },
  })
  t.is(r.signal, 'SIGKILL')
  proxy.setRules([])
  const again = await runCli(args)
  t.is(again.code, 0, again.stderr)
  await assertAllPushed(t, peer, prefix, 'rerun after kill -9')
})
