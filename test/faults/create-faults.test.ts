/**
 * Fault matrix for `kubeferry create`: the built CLI pulls from the REAL docker-registry peers through a
 * fault-injecting proxy (`--mirror registry.k8s.io=http://127.0.0.1:PROXY`). Every case ends in one of two
 * outcomes only: the byte-identical bundle (sha256 equal to a clean build's), or a clear one-line error with no file
 * under the final name. Cases with one right answer assert that answer.
 */
import test, {type ExecutionContext} from 'ava'
import {execFileSync} from 'node:child_process'
import {existsSync, statSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, rm, unlink} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {buildBundle} from '../../src/bundle/build.js'
import {registrySource} from '../../src/registry/source.js'
import {RegistryClient} from '../../src/registry/client.js'
import {anonymousCredentials} from '../../src/registry/auth/credentials.js'
import {BlobStore} from '../../src/store/blob-store.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'
import {assertCreateOutcome, leftovers, runCli, sha256File, type CliResult} from './helpers.js'
import {startFaultProxy, startObjectStore, type FaultProxy, type Rule} from './proxy.js'

const IMAGES = ['registry.k8s.io/pause:3.10', 'registry.k8s.io/kube-proxy:v1.31.6', 'docker.io/library/busybox:1.36']
const PLATFORMS = ['linux/amd64', 'linux/arm64/v8']

let work: string
let reference: {sha: string; blobs: string[]; size: number} | undefined
let bigBlob: {digest: string; size: number} | undefined

function createArgs(proxyUrl: string, output: string, cacheDir: string, extra: string[] = []): string[] {
  return [
    'create',
    ...IMAGES.flatMap((i) => ['--image', i]),
    ...PLATFORMS.flatMap((p) => ['--platform', p]),
    '--mirror', `registry.k8s.io=${proxyUrl}`,
    '--mirror', `docker.io=${proxyUrl}`,
    '--cache-dir', cacheDir,
    '--no-progress',
    '-o', output,
    ...extra,
  ]
}

async function dir(name: string): Promise<string> {
  const d = join(work, name)
  await mkdir(d, {recursive: true})
  return d
}

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-faults-create-'))
  const peers = loadPeers()
  if (missingPeer(['registries']) || !peers) return
  // The largest blob of the chosen images: the host-arch busybox layer (~1 MB), where mid-blob faults bite.
  const chosen = peers.images.filter((i) => IMAGES.includes(i.name))
  const layers = chosen.flatMap((i) => i.platforms.flatMap((p) => p.layers))
  bigBlob = layers.reduce((a, b) => (b.size > a.size ? b : a))
  // The reference: the same create through a proxy with no faults.
  const proxy = await startFaultProxy(peers.registries.open.url)
  try {
    const out = join(await dir('reference'), 'bundle.tar')
    const r = await runCli(createArgs(proxy.url, out, join(work, 'reference', 'cache')))
    if (r.code !== 0) throw new Error(`reference create failed: ${r.stderr}`)
    const list = execFileSync('tar', ['tf', out], {encoding: 'utf8'}).split('\n').filter((n) => n.startsWith('blobs/sha256/'))
    reference = {sha: await sha256File(out), blobs: list.map((n) => `sha256:${n.slice(13)}`), size: statSync(out).size}
  } finally {
    await proxy.close()
  }
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

const blobPath = (digest: string): RegExp => new RegExp(`/blobs/${digest.replace(':', ':')}$`)

/** One fault case: a proxy in front of `registry` with `rules`, a fresh cache, one create run. */
async function faultRun(
  t: ExecutionContext,
  peers: Peers,
  name: string,
  rules: Rule[],
  options: {registry?: 'open' | 'htpasswd' | 'token'; extra?: string[]; stdin?: string; during?: (proxy: FaultProxy, run: Promise<CliResult>) => Promise<void>} = {},
): Promise<{r: CliResult; output: string; proxy: FaultProxy; cache: string}> {
  t.truthy(reference, 'the reference bundle was built')
  const upstream = peers.registries[options.registry ?? 'open'].url
  const proxy = await startFaultProxy(upstream)
  t.teardown(() => proxy.close())
  proxy.setRules(rules)
  const d = await dir(name)
  const output = join(d, 'bundle.tar')
  const cache = join(d, 'cache')
  const run = runCli(createArgs(proxy.url, output, cache, options.extra), {stdin: options.stdin})
  if (options.during) await options.during(proxy, run)
  const r = await run
  t.log(`${name}: exit ${r.code} in ${r.ms} ms; ${proxy.log.length} requests; ${r.code === 0 ? 'ok' : r.stderr.split('\n')[0]}`)
  return {r, output, proxy, cache}
}

peerTest('create: connection reset mid-blob resumes with Range → identical bundle', ['registries'], async (t, peers) => {
  const {r, output, proxy} = await faultRun(t, peers, 'reset', [{name: 'reset', method: 'GET', path: blobPath(bigBlob!.digest), times: 1, fault: {kind: 'reset', afterBytes: 300_000}}])
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'identical', what: 'reset mid-blob'})
  t.is(proxy.applied('reset'), 1)
  const resumed = proxy.log.find((l) => blobPath(bigBlob!.digest).test(l.path) && l.range)
  t.truthy(resumed, 'the interrupted blob was resumed with a Range request')
  t.regex(resumed?.range ?? '', /^bytes=[1-9]\d*-/)
})

peerTest('create: blobs download while the plan still waits for a slow manifest → identical bundle', ['registries'], async (t, peers) => {
  // busybox's tag manifest takes 3 s; pause and kube-proxy are planned long before, and their blobs are fetched
  // meanwhile instead of after the whole plan.
  const rule: Rule = {name: 'slow-manifest', method: 'GET', path: /\/library\/busybox\/manifests\/1\.36$/, times: 1, fault: {kind: 'stall', afterBytes: 0, ms: 3000}}
  const {r, output, proxy} = await faultRun(t, peers, 'slow-manifest', [rule], {extra: ['--debug']})
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'identical', what: 'slow manifest'})
  t.is(proxy.applied('slow-manifest'), 1)
  // --debug's timeline names each phase, in order; the bytes fetched while planning are counted
  const phases = ['planned 3 image\\(s\\)', 'artifacts looked up', 'writing \\d+ bytes, \\d+ of them to fetch \\([1-9]\\d* fetched while planning\\)', 'every byte is in the tar', 'flushed to disk']
  const at = phases.map((phase) => r.stderr.search(new RegExp(`^debug: \\[\\d+\\.\\d{3}s\\] ${phase}`, 'm')))
  t.true(at.every((i, n) => i >= 0 && (n === 0 || i > at[n - 1])), `phases at ${at.join(', ')} in:\n${r.stderr.split('\n').filter((l) => !/ (GET|HEAD) /.test(l)).join('\n')}`)
  const stalled = proxy.log.find((l) => l.fault === 'slow-manifest')!
  const early = proxy.log.filter((l) => /\/(pause|kube-proxy)\/blobs\//.test(l.path) && l.time < stalled.time + 2500)
  t.true(early.length > 0, `no blob was asked for while busybox's manifest was held (${proxy.log.filter((l) => l.path.includes('/blobs/')).length} blob requests in all)`)
})

peerTest('create: 429 with Retry-After is waited out → identical bundle', ['registries'], async (t, peers) => {
  const rule: Rule = {name: '429', method: 'GET', path: /\/manifests\//, times: 2, fault: {kind: 'status', status: 429, headers: {'retry-after': '1'}}}
  const {r, output, proxy} = await faultRun(t, peers, '429', [rule])
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'identical', what: '429'})
  t.is(proxy.applied('429'), 2)
  // The request after the last 429 on that path came no earlier than Retry-After says.
  const limited = proxy.log.filter((l) => l.fault === '429')
  const last = limited[limited.length - 1]
  const nextSame = proxy.log.find((l) => l.path === last.path && l.time > last.time && !l.fault)
  t.truthy(nextSame)
  t.true(nextSame!.time - last.time >= 900, `retried after ${nextSame!.time - last.time} ms, Retry-After was 1 s`)
})

peerTest('create: bursts of 503 are retried → identical bundle', ['registries'], async (t, peers) => {
  const {r, output, proxy} = await faultRun(t, peers, '503', [
    {name: '503-manifests', method: 'GET', path: /\/manifests\//, times: 3, fault: {kind: 'status', status: 503}},
    {name: '503-blobs', method: 'GET', path: /\/blobs\//, skip: 1, times: 3, fault: {kind: 'status', status: 503}},
  ])
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'identical', what: '503 bursts'})
  t.is(proxy.applied('503-manifests'), 3)
  t.is(proxy.applied('503-blobs'), 3)
})

peerTest('create: a registry that answers 503 forever gives a clear error and no bundle', ['registries'], async (t, peers) => {
  const {r, output} = await faultRun(t, peers, '503-forever', [{method: 'GET', path: /\/blobs\//, fault: {kind: 'status', status: 503}}])
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'error', error: /503|failing|unavailable/i, what: '503 forever'})
  t.deepEqual(await leftovers(output), [], 'nothing left beside the final name')
})

peerTest('create: a truncated body (early EOF) is resumed → identical bundle', ['registries'], async (t, peers) => {
  const {r, output, proxy} = await faultRun(t, peers, 'truncate', [{name: 'truncate', method: 'GET', path: blobPath(bigBlob!.digest), times: 1, fault: {kind: 'truncate', afterBytes: 500_000}}])
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'identical', what: 'truncated body'})
  t.is(proxy.applied('truncate'), 1)
})

peerTest('create: one corrupted byte (every time) is refused with a digest error and no bundle', ['registries'], async (t, peers) => {
  const {r, output, cache} = await faultRun(t, peers, 'corrupt', [{method: 'GET', path: blobPath(bigBlob!.digest), fault: {kind: 'corrupt', offset: 4242}}])
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'error', error: /digest|sha256/i, what: 'corrupted byte'})
  t.false(existsSync(join(cache, 'blobs', 'sha256', bigBlob!.digest.slice(7))), 'the corrupt blob did not enter the cache')
})

peerTest('create: one corrupted byte once → identical bundle or a digest error, never a bad bundle', ['registries'], async (t, peers) => {
  const {r, output} = await faultRun(t, peers, 'corrupt-once', [{method: 'GET', path: blobPath(bigBlob!.digest), times: 1, fault: {kind: 'corrupt', offset: 777}}])
  const outcome = await assertCreateOutcome(t, r, output, reference!.sha, {error: /digest|sha256/i, what: 'corrupted byte once'})
  t.log(`corrupt once → ${outcome}`)
})

peerTest('create: a slow trickle (gaps below the stall timeout) still completes → identical bundle', ['registries'], async (t, peers) => {
  const {r, output, proxy} = await faultRun(t, peers, 'trickle', [{name: 'trickle', method: 'GET', path: blobPath(bigBlob!.digest), fault: {kind: 'trickle', chunkBytes: 64 * 1024, delayMs: 100}}])
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'identical', what: 'trickle'})
  t.is(proxy.applied('trickle'), 1)
  t.true(r.ms > 1500, `the trickle took effect (${r.ms} ms)`)
})

peerTest('create (library): a stall longer than the stall timeout is resumed → identical bundle', ['registries'], async (t, peers) => {
  // The CLI keeps undici's 60 s stall timeout; the library takes it as an option, so this case runs in seconds.
  const build = async (name: string, rules: Rule[]): Promise<{sha: string; proxy: FaultProxy}> => {
    const proxy = await startFaultProxy(peers.registries.open.url)
    t.teardown(() => proxy.close())
    proxy.setRules(rules)
    const d = await dir(name)
    const client = new RegistryClient({mirrors: {'registry.k8s.io': [proxy.url], 'docker.io': [proxy.url]}, credentials: anonymousCredentials, stallTimeoutMs: 700, retry: {attempts: 5, baseDelayMs: 50}})
    try {
      const summary = await buildBundle({
        source: registrySource(client),
        store: await BlobStore.open(join(d, 'cache')),
        requests: IMAGES.map((reference) => ({reference})),
        platforms: PLATFORMS,
        output: join(d, 'bundle.tar'),
        request: {platforms: PLATFORMS, images: IMAGES},
        sourceDateEpoch: 0,
      })
      return {sha: summary.sha256, proxy}
    } finally {
      await client.close()
    }
  }
  const clean = await build('stall-clean', [])
  const stalled = await build('stall', [{name: 'stall', method: 'GET', path: blobPath(bigBlob!.digest), times: 1, fault: {kind: 'stall', afterBytes: 200_000, ms: 3000}}])
  t.is(stalled.proxy.applied('stall'), 1)
  t.is(stalled.sha, clean.sha)
  t.truthy(stalled.proxy.log.find((l) => blobPath(bigBlob!.digest).test(l.path) && l.range), 'resumed with Range after the stall timeout')
})

peerTest('create: blobs redirected to object storage on another host (open registry) → identical, no Authorization there', ['registries'], async (t, peers) => {
  const store = await startObjectStore(peers.registries.open.url)
  t.teardown(() => store.close())
  const {r, output, proxy} = await faultRun(t, peers, 'redirect-open', [{method: 'GET', path: /\/blobs\//, fault: {kind: 'redirect', location: store.location}}])
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'identical', what: 'redirect (anonymous)'})
  const redirected = proxy.log.filter((l) => l.status === 307).length
  t.true(redirected > 0 && store.gets >= redirected, `object storage served the redirected blobs (${redirected} redirects, ${store.gets} GETs)`)
  t.deepEqual(store.authorizationsSeen, [])
})

peerTest('create: blobs redirected to object storage from an authenticated registry → identical, credentials stay home', ['registries'], async (t, peers) => {
  const reg = peers.registries.htpasswd
  const store = await startObjectStore(reg.url, {username: reg.username!, password: reg.password!})
  t.teardown(() => store.close())
  const {r, output, proxy} = await faultRun(t, peers, 'redirect-auth', [{method: 'GET', path: /\/blobs\//, fault: {kind: 'redirect', location: store.location}}], {
    registry: 'htpasswd',
    extra: ['--username', reg.username!, '--password-stdin'],
    stdin: `${reg.password}\n`,
  })
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'identical', what: 'redirect (authenticated)'})
  t.true(store.gets > 0)
  t.deepEqual(store.authorizationsSeen, [], 'no Authorization header reached object storage')
  t.true(proxy.log.some((l) => l.authorization && /\/blobs\//.test(l.path)), 'the registry itself got the credentials')
})

peerTest('create: a token that expires mid-run is refreshed → identical bundle', ['registries'], async (t, peers) => {
  // The trickle makes the run outlive the token (asserted below); it is slow enough for a fast machine too.
  const reg = peers.registries.token
  const before = (await (await fetch(reg.statsUrl)).json()) as {byUser: Record<string, number>}
  const {r, output} = await faultRun(t, peers, 'token-expiry', [{method: 'GET', path: new RegExp(`/blobs/(?!${bigBlob!.digest})`), fault: {kind: 'trickle', chunkBytes: 512, delayMs: 160}}], {
    registry: 'token',
    extra: ['--username', reg.shortLived.username, '--password-stdin', '--concurrency', '1'],
    stdin: `${reg.shortLived.password}\n`,
  })
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'identical', what: 'token expiry'})
  const after = (await (await fetch(reg.statsUrl)).json()) as {byUser: Record<string, number>}
  const issued = (after.byUser[reg.shortLived.username] ?? 0) - (before.byUser[reg.shortLived.username] ?? 0)
  t.true(r.ms > (reg.shortLived.expiresIn + 1) * 1000, `the run outlived the token (${r.ms} ms vs ${reg.shortLived.expiresIn} s)`)
  t.true(issued >= 2, `a fresh token was fetched after expiry (${issued} issued)`)
})

peerTest('create: a wrong password gives a clear authentication error and no bundle', ['registries'], async (t, peers) => {
  const reg = peers.registries.htpasswd
  const {r, output} = await faultRun(t, peers, 'wrong-password', [], {registry: 'htpasswd', extra: ['--username', reg.username!, '--password-stdin'], stdin: 'not-the-password\n'})
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'error', error: /authentication|unauthori[sz]ed|denied|credentials/i, what: 'wrong password'})
  t.notRegex(r.stderr + r.stdout, /not-the-password/)
  t.deepEqual(await leftovers(output), [])
})

peerTest('create: registry down (connections reset) for a while, then back → identical bundle', ['registries'], async (t, peers) => {
  const {r, output, proxy} = await faultRun(t, peers, 'down-reset', [], {
    during: async (p) => {
      await p.down('reset')
      const deadline = Date.now() + 60_000
      while (p.downResets < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
      await new Promise((res) => setTimeout(res, 400))
      await p.up()
    },
  })
  t.true(proxy.downResets >= 2, `connections were reset while down (${proxy.downResets})`)
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'identical', what: 'down (reset) then back'})
})

peerTest('create: registry down (connection refused) → clear error, no bundle; rerun when it is back → identical', ['registries'], async (t, peers) => {
  const {r, output, proxy, cache} = await faultRun(t, peers, 'down-refuse', [], {during: (p) => p.down('refuse')})
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'error', error: /cannot reach|refused/i, what: 'down (refused)'})
  await proxy.up()
  const again = await runCli(createArgs(proxy.url, output, cache))
  await assertCreateOutcome(t, again, output, reference!.sha, {expect: 'identical', what: 'rerun after the registry came back'})
})

function tryMountTmpfs(path: string, size: string): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a tmpfs'
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', path], {stdio: 'pipe'})
    return undefined
  } catch (error) {
    return `mount -t tmpfs failed: ${String((error as {stderr?: Buffer}).stderr ?? error).trim()}`
  }
}

peerTest.serial('create: ENOSPC on the output disk (small tmpfs) → clear error, nothing left there', ['registries'], async (t, peers) => {
  const mnt = await dir('enospc-mnt')
  const why = tryMountTmpfs(mnt, `${Math.floor(reference!.size / 2)}`)
  if (why) {
    t.log(`SKIPPED: ${why}`)
    t.pass()
    return
  }
  t.teardown(() => execFileSync('umount', [mnt]))
  const proxy = await startFaultProxy(peers.registries.open.url)
  t.teardown(() => proxy.close())
  const output = join(mnt, 'bundle.tar')
  const r = await runCli(createArgs(proxy.url, output, join(await dir('enospc-cache'), 'cache')))
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'error', error: /space/i, what: 'ENOSPC output'})
  t.deepEqual(await readdir(mnt), [], 'the small disk is left empty')
})

peerTest.serial('create: ENOSPC in the cache while downloading (small tmpfs) → clear error, no bundle', ['registries'], async (t, peers) => {
  const mnt = await dir('enospc-cache-mnt')
  const why = tryMountTmpfs(mnt, '300k')
  if (why) {
    t.log(`SKIPPED: ${why}`)
    t.pass()
    return
  }
  t.teardown(() => execFileSync('umount', [mnt]))
  const proxy = await startFaultProxy(peers.registries.open.url)
  t.teardown(() => proxy.close())
  const output = join(await dir('enospc-cache-out'), 'bundle.tar')
  const r = await runCli(createArgs(proxy.url, output, join(mnt, 'cache')))
  await assertCreateOutcome(t, r, output, reference!.sha, {expect: 'error', error: /space/i, what: 'ENOSPC cache'})
  t.deepEqual(await leftovers(output), [])
})

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((res) => setTimeout(res, 10))
  }
  return true
}

/** The `N downloaded, M from the cache` figures of create's summary line. */
function downloadedCount(stdout: string): number | undefined {
  const m = /(\d+) downloaded(?: \([^)]*\))?, (\d+) from the cache/.exec(stdout)
  return m ? Number(m[1]) : undefined
}

/**
 * Start create with the big blob trickled through a fresh proxy, and send `signal` `afterMs` after that blob was
 * first asked for: the build is then mid-download.
 */
async function signalMidDownload(t: ExecutionContext, peers: Peers, name: string, signal: NodeJS.Signals, afterMs: number) {
  const proxy = await startFaultProxy(peers.registries.open.url)
  t.teardown(() => proxy.close())
  const big = blobPath(bigBlob!.digest)
  proxy.setRules([{method: 'GET', path: big, fault: {kind: 'trickle', chunkBytes: 32 * 1024, delayMs: 100}}])
  const d = await dir(name)
  const output = join(d, 'bundle.tar')
  const cache = join(d, 'cache')
  const r = await runCli(createArgs(proxy.url, output, cache), {
    onSpawn: (child) => {
      void waitUntil(() => proxy.log.some((l) => big.test(l.path)), 60_000).then(() => setTimeout(() => child.kill(signal), afterMs))
    },
  })
  return {r, proxy, big, output, cache}
}

peerTest('create: kill -9 during the download, then rerun → identical, verified blobs not fetched again', ['registries'], async (t, peers) => {
  const {r, proxy, big, output, cache} = await signalMidDownload(t, peers, 'kill-download', 'SIGKILL', 600)
  t.is(r.signal, 'SIGKILL', `create was killed mid-download (exit ${r.code})`)
  t.false(existsSync(output), 'no bundle under the final name after kill -9')
  const cached = (await readdir(join(cache, 'blobs', 'sha256'))).length
  t.true(cached > 0, 'some blobs were verified into the cache before the kill')
  proxy.setRules([])
  const before = proxy.log.length
  const again = await runCli(createArgs(proxy.url, output, cache))
  await assertCreateOutcome(t, again, output, reference!.sha, {expect: 'identical', what: 'rerun after kill -9 (download)'})
  const refetched = proxy.log.slice(before).filter((l) => /\/blobs\//.test(l.path)).map((l) => l.path)
  t.true(refetched.some((p) => big.test(p)), 'the interrupted blob was fetched on rerun')
  t.true(refetched.length < reference!.blobs.length, `rerun fetched ${refetched.length} of ${reference!.blobs.length} blobs`)
  t.log(`rerun: ${downloadedCount(again.stdout)} downloaded; ${refetched.length} blob GETs`)
})

peerTest('create: Ctrl-C during the download says "interrupted", exits 130 and leaves no bundle; the cache keeps only the partial blob to continue', ['registries'], async (t, peers) => {
  const {r, output, cache} = await signalMidDownload(t, peers, 'sigint', 'SIGINT', 300)
  t.is(r.code, 130, r.stderr)
  t.regex(r.stderr, /error: interrupted: no bundle was written/)
  t.regex(r.stderr, /run the same command again/)
  t.notRegex(r.stderr, /aborted|report this as a bug|\n\s+at /, 'no AbortError, no bug hint, no stack')
  t.deepEqual(await leftovers(output), [], 'nothing under or beside the final name')
  // What was fetched of the interrupted blob stays as <hex>.partial for the next run (issue 18: resume across runs).
  t.deepEqual((await readdir(join(cache, 'tmp'))).filter((name) => !/^[a-f0-9]{64}\.partial$/.test(name)), [], 'no temp file left in the cache but kept partials')
})

peerTest('create: kill -9 during the tar write, then rerun → identical bundle', ['registries'], async (t, peers) => {
  const d = await dir('kill-write')
  const output = join(d, 'bundle.tar')
  const cache = join(d, 'cache')
  const proxy = await startFaultProxy(peers.registries.open.url)
  t.teardown(() => proxy.close())
  // Warm the cache, then drop the LAST blob in tar order and trickle it: the writer has most of the tar written and
  // is waiting on that blob when it is killed.
  const warm = await runCli(createArgs(proxy.url, join(d, 'warm.tar'), cache))
  t.is(warm.code, 0, warm.stderr)
  const last = [...reference!.blobs].sort().at(-1)!
  await unlink(join(cache, 'blobs', 'sha256', last.slice(7)))
  proxy.setRules([{method: 'GET', path: blobPath(last), fault: {kind: 'trickle', chunkBytes: 16, delayMs: 100}}])
  let partialSize = 0
  const r = await runCli(createArgs(proxy.url, output, cache), {
    onSpawn: (child) => {
      void waitUntil(() => {
        try {
          partialSize = statSync(`${output}.partial`).size
        } catch {
          partialSize = 0
        }
        return partialSize > reference!.size / 2
      }, 60_000).then(() => child.kill('SIGKILL'))
    },
  })
  t.is(r.signal, 'SIGKILL', `create was killed while writing (exit ${r.code})`)
  t.true(partialSize > reference!.size / 2, `killed with ${partialSize} of ${reference!.size} bytes written`)
  t.false(existsSync(output), 'no bundle under the final name after kill -9')
  proxy.setRules([])
  const again = await runCli(createArgs(proxy.url, output, cache))
  await assertCreateOutcome(t, again, output, reference!.sha, {expect: 'identical', what: 'rerun after kill -9 (tar write)'})
  t.is(downloadedCount(again.stdout), 1, 'only the missing blob was downloaded on rerun')
  t.false(existsSync(`${output}.partial`), 'the stale .partial was replaced')
})
