/**
 * A delta bundle on nodes (issue 20), against the real containerd and a dockerd of our own:
 *  - onto a runtime holding the base (v1.31.0 imported by install.sh or `load`), install.sh and `load` import the
 *    v1.31.6 delta and every image is there with its upstream digest (containerd) or config digest (docker);
 *  - onto a fresh runtime (a new containerd namespace; a dockerd without the base) both refuse, exit 7, naming the
 *    missing images, and nothing is imported (no image, no content);
 *  - podman (a private containers-storage): the same refusal, and onto the base the delta imports;
 *  - an inventory of the containerd node (and of the dockerd) gives, through `create --base`, the same delta as the
 *    base bundle does (amd64: what a node imports), and that delta is refused by `push` with a clear message.
 */
import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'
import test from 'ava'
import {startDockerd, DOCKER_BIN} from '../harness/peers/dockerd.js'
import {stopDaemon} from '../harness/proc.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {makeStore} from '../podman/store.js'
import {blobEntries, create, metadataOf, seedV1310, tempDir, unique, V1_31_0, V1_31_6} from './helpers.js'

const execFileP = promisify(execFile)
const AMD64 = ['--platform', 'linux/amd64']
let dir = ''
let setup: string | undefined

test.before(async () => {
  if (missingPeer(['registries'])) return
  const peers = loadPeers()!
  dir = await tempDir('runtime')
  await seedV1310(peers, dir)
  for (const [name, images, extra] of [
    ['v0.tar', V1_31_0, []],
    ['d6.tar', V1_31_6, ['--base', join(dir, 'v0.tar')]],
  ] as const) {
    const r = await create(peers, dir, join(dir, name), [...images], [...extra])
    if (r.code !== 0) setup = `create ${name}: ${r.stderr}`
  }
  // what a node imports: one platform; the delta made from the base bundle, to compare the inventories' deltas with
  const r = await createAmd64(peers, join(dir, 'd6-amd64-bundle.tar'), join(dir, 'v0.tar'))
  if (r.code !== 0) setup = `create d6-amd64-bundle.tar: ${r.stderr}`
})

test.after.always(async () => {
  if (dir) await rm(dir, {recursive: true, force: true})
})

/** The v1.31.6 delta for linux/amd64 only, against `base`. */
function createAmd64(peers: Peers, out: string, base: string, options: {cache?: string; json?: boolean} = {}) {
  return runCli(['create', ...V1_31_6.flatMap((i) => ['--image', i]), '--mirror', `registry.k8s.io=${peers.registries.open.url}`, ...AMD64, '--cache-dir', options.cache ?? join(dir, 'cache'), '--no-progress', '-o', out, '--base', base, ...(options.json ? ['--json'] : [])], {env: {SOURCE_DATE_EPOCH: '1700000000'}})
}

function ctrOf(peers: Peers, namespace: string) {
  return async (...args: string[]): Promise<string> => (await execFileP('ctr', ['--address', peers.containerd!.address, '--namespace', namespace, ...args], {maxBuffer: 16 << 20})).stdout
}

const sh = (script: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  execFileP('sh', [script, ...args], {env: {...process.env, ...env}, maxBuffer: 16 << 20}).then(
    (r) => ({code: 0, stdout: r.stdout, stderr: r.stderr}),
    (e: {code: number; stdout: string; stderr: string}) => ({code: e.code, stdout: e.stdout, stderr: e.stderr}),
  )

peerTest('containerd: a delta onto the base imports every image with its upstream digest; onto a fresh namespace it is refused, nothing imported', ['registries', 'containerd'], async (t, peers) => {
  if (setup) return t.fail(setup)
  const meta = await metadataOf(join(dir, 'd6.tar'))
  const address = peers.containerd!.address
  const node = (ns: string) => ['--runtime', 'containerd', '--address', address, '--namespace', ns, ...AMD64]
  // install.sh and load, each onto a namespace holding the base
  for (const via of ['install.sh', 'load']) {
    const ns = unique(`kfdelta-${via === 'load' ? 'load' : 'sh'}`)
    const ctr = ctrOf(peers, ns)
    const run = (bundle: string) => (via === 'load' ? runCli(['load', join(dir, `${bundle}.tar`), ...node(ns)]) : sh(join(dir, `${bundle}.install.sh`), [join(dir, `${bundle}.tar`), ...node(ns)]))
    const base = await run('v0')
    t.is(base.code, 0, base.stderr)
    const delta = await run('d6')
    t.is(delta.code, 0, `${via}: ${delta.stderr}`)
    t.regex(delta.stdout, /delta bundle: containerd holds the \d+ layer uses it relies on/)
    const listed = await ctr('images', 'ls')
    const check = await ctr('images', 'check')
    for (const image of meta.images) {
      t.true(listed.split('\n').some((l) => l.startsWith(`${image.name} `) && l.includes(image.digest)), `${via}: ${image.name} ${image.digest}`)
      t.true(check.split('\n').some((l) => l.startsWith(`${image.name} `) && / complete /.test(l)), `${via}: ${image.name} complete`)
    }
  }
  // a fresh namespace: refused by both, nothing imported
  const fresh = unique('kfdelta-fresh')
  const ctr = ctrOf(peers, fresh)
  for (const r of [await sh(join(dir, 'd6.install.sh'), [join(dir, 'd6.tar'), ...node(fresh)]), await runCli(['load', join(dir, 'd6.tar'), ...node(fresh)])]) {
    t.is(r.code, 7, r.stderr)
    t.regex(r.stderr, /relies on layers that containerd does not hold; missing for: .*registry\.k8s\.io\/kube-apiserver:v1\.31\.6.*Nothing was imported/)
    for (const image of meta.images) t.true(r.stderr.includes(image.name), `names ${image.name}`)
  }
  t.is((await ctr('images', 'ls', '-q')).trim(), '')
  t.is((await ctr('content', 'ls', '-q')).trim(), '')
})

peerTest('containerd node inventory: the delta made against it equals the one made from the base bundle; push refuses it', ['registries', 'containerd'], async (t, peers) => {
  if (setup) return t.fail(setup)
  const ns = unique('kfdelta-inv')
  const address = peers.containerd!.address
  t.is((await runCli(['load', join(dir, 'v0.tar'), '--runtime', 'containerd', '--address', address, '--namespace', ns, ...AMD64])).code, 0)
  const inventory = join(dir, `${ns}.json`)
  const inv = await runCli(['inventory', '--runtime', 'containerd', '--address', address, '--namespace', ns, '-o', inventory, '--json'])
  t.is(inv.code, 0, inv.stderr)
  t.is((JSON.parse(inv.stdout) as {kind: string}).kind, 'runtime')
  const fromNode = join(dir, 'd6-amd64-node.tar')
  const r = await createAmd64(peers, fromNode, inventory)
  t.is(r.code, 0, r.stderr)
  t.deepEqual(blobEntries(fromNode), blobEntries(join(dir, 'd6-amd64-bundle.tar')))
  const meta = await metadataOf(fromNode)
  t.is(meta.delta!.base.kind, 'runtime-inventory')
  t.deepEqual(meta.delta!.for, ['load'])
  const installed = await sh(join(dir, 'd6-amd64-node.install.sh'), [fromNode, '--runtime', 'containerd', '--address', address, '--namespace', ns, ...AMD64])
  t.is(installed.code, 0, installed.stderr)
  const push = await runCli(['push', fromNode, `${peers.registries.open.host}/${unique('kfdelta-nodeonly')}`, '--no-progress'])
  t.is(push.code, 1)
  t.regex(push.stderr, /made against a runtime-inventory .*: it is for install\.sh or `kubeferry load` on nodes holding that base, not for a registry; nothing was pushed/)
})

peerTest('docker: refused on a dockerd without the base (nothing loaded); onto the base every image has its config digest; its inventory gives the same delta', ['registries', 'containerd', 'dockerd'], async (t, peers) => {
  if (setup) return t.fail(setup)
  const home = join(dir, unique('dockerd'))
  await mkdir(home, {recursive: true})
  const dockerd = await startDockerd(home, {containerd: peers.containerd!.address, daemonJson: {'containerd-namespace': unique('kfdelta-moby'), 'containerd-plugins-namespace': unique('kfdelta-plugins')}})
  try {
    const env = {DOCKER_HOST: dockerd.host, DOCKER_CONFIG: join(home, 'client')}
    const docker = async (...args: string[]) => (await execFileP(DOCKER_BIN, args, {env: {...process.env, ...env}})).stdout
    const meta = await metadataOf(join(dir, 'd6.tar'))
    for (const r of [await sh(join(dir, 'd6.install.sh'), [join(dir, 'd6.tar'), '--runtime', 'docker', ...AMD64], env), await runCli(['load', join(dir, 'd6.tar'), '--runtime', 'docker', ...AMD64], {env})]) {
      t.is(r.code, 7, r.stderr)
      t.regex(r.stderr, /relies on layers that docker does not hold; missing for: .*Nothing was imported/)
    }
    t.is((await docker('images', '-aq')).trim(), '')
    t.is((await sh(join(dir, 'v0.install.sh'), [join(dir, 'v0.tar'), '--runtime', 'docker', ...AMD64], env)).code, 0)
    const inventory = join(home, 'docker.inventory.json')
    t.is((await runCli(['inventory', '--runtime', 'docker', '-o', inventory], {env})).code, 0)
    const loaded = await runCli(['load', join(dir, 'd6.tar'), '--runtime', 'docker', ...AMD64], {env})
    t.is(loaded.code, 0, loaded.stderr)
    for (const image of meta.images) {
      const config = image.platforms.find((p) => p.platform === 'linux/amd64')!.config.digest
      t.is((await docker('image', 'inspect', '--format', '{{.Id}}', image.name)).trim(), config, image.name)
    }
    const fromDocker = join(home, 'd6-docker.tar')
    // an empty cache: what is downloaded shows (docker's inventory knows layers by ChainID only: each layer waits for the delta)
    const r = await createAmd64(peers, fromDocker, inventory, {cache: join(home, 'empty-cache'), json: true})
    t.is(r.code, 0, r.stderr)
    t.deepEqual(blobEntries(fromDocker), blobEntries(join(dir, 'd6-amd64-bundle.tar')), 'by layer chain, the same layers as by digest')
    const summary = JSON.parse(r.stdout) as {uniqueBlobs: number; manifests: number; downloadedBlobs: number; delta: {reliedBlobs: number}}
    t.true(summary.delta.reliedBlobs > 0)
    t.is(summary.downloadedBlobs, summary.uniqueBlobs - summary.manifests, 'only the carried configs and layers are downloaded, none the base holds')
  } finally {
    await stopDaemon(dockerd.process)
  }
})

peerTest('podman: refused on a store without the base (nothing imported); onto the base every image is imported (layers reused from the store)', ['registries'], async (t) => {
  if (setup) return t.fail(setup)
  if (!existsSync('/usr/bin/podman')) {
    t.pass('podman is not installed here')
    return
  }
  const store = await makeStore(dir, unique('podman'))
  const env = store.env()
  const install = (bundle: string) => sh(join(dir, `${bundle}.install.sh`), [join(dir, `${bundle}.tar`), '--runtime', 'podman', ...AMD64], env)
  const refused = await install('d6')
  t.is(refused.code, 7, refused.stderr)
  t.regex(refused.stderr, /relies on layers that podman does not hold; missing for: .*Nothing was imported/)
  t.deepEqual(await store.images(), [])
  t.is((await install('v0')).code, 0)
  const delta = await install('d6')
  t.is(delta.code, 0, delta.stderr)
  t.regex(delta.stdout, /summary: linux\/amd64 into podman: 7 images, 5 imported, 2 already present, 0 missing/)
})
