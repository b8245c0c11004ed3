/**
 * A delta bundle and registries (issue 20), against the real open test registry (a fault proxy in front of it logs
 * what kubeferry asks and answers 401 to /v2/_catalog):
 *  - pushed into a registry holding the base, every image has its upstream digest (skopeo inspect --raw);
 *  - pushed into an empty one it is refused before any upload (no POST, PATCH or PUT reached the registry);
 *  - an inventory of the registry after pushing the v1.31.0 set, taken without catalog access, gives a delta to
 *    v1.31.6 equal in blobs to the one made from the v1.31.0 bundle; that delta is for push only: install.sh and
 *    `load` refuse it clearly, and pushed into that registry every digest is right.
 */
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {rm} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'
import test, {type ExecutionContext} from 'ava'
import {startFaultProxy, type FaultProxy} from '../faults/proxy.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {blobEntries, create, metadataOf, seedV1310, tempDir, unique, V1_31_0, V1_31_6} from './helpers.js'

const execFileP = promisify(execFile)
let dir = ''
let setup: string | undefined
let proxy: FaultProxy | undefined

test.before(async () => {
  if (missingPeer(['registries'])) return
  const peers = loadPeers()!
  dir = await tempDir('push')
  await seedV1310(peers, dir)
  for (const [name, images, extra] of [
    ['v0.tar', V1_31_0, []],
    ['d6.tar', V1_31_6, ['--base', join(dir, 'v0.tar')]],
  ] as const) {
    const r = await create(peers, dir, join(dir, name), [...images], [...extra])
    if (r.code !== 0) setup = `create ${name}: ${r.stderr}`
  }
  proxy = await startFaultProxy(peers.registries.open.url)
  proxy.setRules([{name: 'no-catalog', path: /^\/v2\/_catalog/, fault: {kind: 'status', status: 401, body: '{"errors":[{"code":"UNAUTHORIZED","message":"catalog access denied"}]}'}}])
})

test.after.always(async () => {
  await proxy?.close()
  if (dir) await rm(dir, {recursive: true, force: true})
})

/** `skopeo inspect --raw` of every image of the delta under `prefix`: each digest is the upstream one. */
async function assertDigests(t: ExecutionContext, host: string, prefix: string, bundle: string): Promise<void> {
  for (const image of (await metadataOf(bundle)).images) {
    const ref = `${host}/${prefix}/${image.repository}:${image.tag}`
    const {stdout} = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], {encoding: 'buffer', maxBuffer: 16 << 20})
    t.is(`sha256:${createHash('sha256').update(stdout).digest('hex')}`, image.digest, ref)
  }
}

const writes = (p: FaultProxy, from: number) => p.log.slice(from).filter((r) => r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH')

peerTest('push: onto the base every digest is right; into an empty registry refused before any upload', ['registries', 'skopeo'], async (t, peers: Peers) => {
  if (setup) return t.fail(setup)
  const host = peers.registries.open.host
  const prefix = unique('kfdelta-push')
  t.is((await runCli(['push', join(dir, 'v0.tar'), `${host}/${prefix}`, '--no-progress'])).code, 0)
  const pushed = await runCli(['push', join(dir, 'd6.tar'), `${host}/${prefix}`, '--no-progress', '--json'])
  t.is(pushed.code, 0, pushed.stderr)
  await assertDigests(t, host, prefix, join(dir, 'd6.tar'))

  const before = proxy!.log.length
  const empty = await runCli(['push', join(dir, 'd6.tar'), `${proxy!.host}/${unique('kfdelta-empty')}`, '--no-progress'])
  t.is(empty.code, 1)
  t.regex(empty.stderr, /the registry does not hold \d+ layer\(s\) this delta bundle relies on; missing for: .*registry\.k8s\.io\/kube-apiserver:v1\.31\.6.*Nothing was pushed/)
  t.deepEqual(writes(proxy!, before), [], 'nothing was written')
  const dry = await runCli(['push', join(dir, 'd6.tar'), `${proxy!.host}/${unique('kfdelta-empty')}`, '--dry-run', '--no-progress'])
  t.is(dry.code, 1, 'a dry run refuses as the push would')
  t.regex(dry.stderr, /this delta bundle relies on; missing for/)
  t.deepEqual(writes(proxy!, before), [])
  t.true(proxy!.log.slice(before).some((r) => r.method === 'HEAD' && /\/blobs\/sha256:/.test(r.path)), 'the relied-on blobs were asked for')
})

peerTest('registry inventory without catalog access: the delta equals the one from the base bundle; it is for push only', ['registries', 'skopeo', 'containerd'], async (t, peers: Peers) => {
  if (setup) return t.fail(setup)
  const prefix = unique('kfdelta-inv')
  t.is((await runCli(['push', join(dir, 'v0.tar'), `${proxy!.host}/${prefix}`, '--no-progress'])).code, 0)
  // the proxy refuses the catalog: a client that asked would fail
  const catalog = await fetch(`${proxy!.url}/v2/_catalog`)
  t.is(catalog.status, 401)
  const before = proxy!.log.length
  const inventory = join(dir, `${prefix}.json`)
  const inv = await runCli(['inventory', `${proxy!.host}/${prefix}`, '--images-from', join(dir, 'v0.tar'), '-o', inventory, '--json'])
  t.is(inv.code, 0, inv.stderr)
  t.false(proxy!.log.slice(before).some((r) => r.path.includes('_catalog')), 'no catalog request')
  const summary = JSON.parse(inv.stdout) as {kind: string; images: number; blobs: number}
  t.is(summary.kind, 'registry')
  t.true(summary.images >= V1_31_0.length, `${summary.images} images`)

  const fromRegistry = join(dir, 'd6-registry.tar')
  const r = await create(peers, dir, fromRegistry, [...V1_31_6], ['--base', inventory])
  t.is(r.code, 0, r.stderr)
  t.deepEqual(blobEntries(fromRegistry), blobEntries(join(dir, 'd6.tar')), 'the same blobs as the delta made from the v1.31.0 bundle')
  const meta = await metadataOf(fromRegistry)
  t.is(meta.delta!.base.kind, 'registry-inventory')
  t.deepEqual(meta.delta!.for, ['push'])

  // for push only: nodes refuse it clearly, nothing imported
  const ns = unique('kfdelta-regonly')
  const node = ['--runtime', 'containerd', '--address', peers.containerd!.address, '--namespace', ns, '--platform', 'linux/amd64']
  const sh = await execFileP('sh', [join(dir, 'd6-registry.install.sh'), fromRegistry, ...node]).then(() => ({code: 0, stderr: ''}), (e: {code: number; stderr: string}) => e)
  const load = await runCli(['load', fromRegistry, ...node])
  for (const refused of [sh, load]) {
    t.is(refused.code, 7, refused.stderr)
    t.regex(refused.stderr, /delta bundle made against a registry-inventory.*it is for `kubeferry push` into that registry, not for a node; nothing was imported/)
  }
  // and into that registry every digest is right
  const pushed = await runCli(['push', fromRegistry, `${peers.registries.open.host}/${prefix}`, '--no-progress'])
  t.is(pushed.code, 0, pushed.stderr)
  await assertDigests(t, peers.registries.open.host, prefix, fromRegistry)
})
