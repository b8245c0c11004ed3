/**
 * Real clients against `kubeferry serve`: skopeo inspect/copy of every image, containerd (`ctr images pull
 * --hosts-dir`) through a hosts.toml mirror for registry.k8s.io, and dockerd through `registry-mirrors` for docker.io.
 * Every digest must equal the bundle's (= upstream) digest.
 */
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readFile, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {peerTest, type Peers, type TestImage} from '../harness/peers.js'
import {run} from '../harness/proc.js'
import {startDockerd} from '../harness/peers/dockerd.js'
import {stopDaemon} from '../harness/proc.js'
import {describeServedMirrors} from '../../src/serve/served-names.js'
import {serveBundles, sharedBundle, type TestServer} from './helpers.js'
import {mapLimit} from '../../src/util/async.js'

const sha = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
const DOCKER = '/usr/bin/docker'

let server: Promise<TestServer> | undefined
let images: TestImage[] = []

/** One server for the file (tests run concurrently: memoise the promise, not the result). */
async function ensureServer(peers: Peers): Promise<TestServer> {
  server ??= (async () => {
    const shared = await sharedBundle(peers)
    images = shared.layout.images
    return serveBundles([shared.path], {prefix: 'k8s'})
  })()
  return server
}

test.after.always(async () => {
  if (server) await (await server).close(1000)
})


peerTest('skopeo inspect and copy every image from serve; digests equal the bundle', ['skopeo'], async (t, peers) => {
  const s = await ensureServer(peers)
  const host = s.url.replace('http://', '')
  const skopeo = peers.tools.skopeo
  const out = await mkdtemp(join(tmpdir(), 'kubeferry-serve-skopeo-'))

  const summary = JSON.parse((await run(skopeo, ['inspect', '--tls-verify=false', `docker://${host}/pause:3.10`])).stdout) as {Digest: string; RepoTags: string[]}
  t.is(summary.Digest, images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!.digest)
  t.true(summary.RepoTags.includes('3.10'))

  t.true(images.length >= 8)
  await mapLimit(images, 4, async (image) => {
    for (const name of [image.repository, `k8s/${image.repository}`]) {
      const raw = (await run(skopeo, ['inspect', '--tls-verify=false', '--raw', `docker://${host}/${name}:${image.tag}`])).stdout
      t.is(sha(raw), image.digest, `inspect --raw ${name}:${image.tag}`)
    }
    const dest = join(out, image.repository.replaceAll('/', '_') + '-' + image.tag)
    // dir: keeps a Docker list as it is (oci: would have to convert it, changing the digest).
    await run(skopeo, ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${host}/${image.repository}:${image.tag}`, `dir:${dest}`], {timeoutMs: 120_000})
    t.is(sha(await readFile(join(dest, 'manifest.json'))), image.digest, `copy ${image.name}`)
    // every platform's manifest and last layer arrived with the right bytes (skopeo verified them too)
    for (const platform of image.platforms) {
      t.is(sha(await readFile(join(dest, `${platform.digest.slice(7)}.manifest.json`))), platform.digest)
      const layer = platform.layers[platform.layers.length - 1]
      t.is(sha(await readFile(join(dest, layer.digest.slice(7)))), layer.digest)
    }
  })
})

peerTest('ctr images pull through a hosts.toml mirror for registry.k8s.io gets the upstream digests', ['containerd'], async (t, peers) => {
  const s = await ensureServer(peers)
  const containerd = peers.containerd!
  const hostsDir = await mkdtemp(join(tmpdir(), 'kubeferry-serve-hosts-'))
  // The facts config renders from: one hosts.toml per upstream, pointing at the serving host.
  const mirrors = describeServedMirrors(images.map((i) => ({registry: i.name.split('/')[0], repository: i.repository})), {url: s.url})
  const k8s = mirrors.find((m) => m.upstream === 'registry.k8s.io')!
  t.is(k8s.server, 'https://registry.k8s.io')
  t.false(k8s.overridePath)
  await mkdir(join(hostsDir, 'registry.k8s.io'))
  await writeFile(join(hostsDir, 'registry.k8s.io', 'hosts.toml'), `server = "${k8s.server}"\n\n[host."${k8s.host}"]\n  capabilities = ["pull", "resolve"]\n`)

  const namespace = `kf-serve-${process.pid}`
  const ctr = (args: string[]) => run(peers.tools.ctr ?? '/usr/bin/ctr', ['--address', containerd.address, '-n', namespace, ...args], {timeoutMs: 120_000})
  const wanted = ['registry.k8s.io/pause:3.10', 'registry.k8s.io/kube-proxy:v1.31.6', 'registry.k8s.io/coredns/coredns:v1.11.3']
  const before = s.logLines.length
  for (const name of wanted) {
    await ctr(['images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', containerd.snapshotter, name])
  }
  const listed = (await ctr(['images', 'ls'])).stdout
  for (const name of wanted) {
    const digest = images.find((i) => i.name === name)!.digest
    const line = listed.split('\n').find((l) => l.startsWith(`${name} `))
    t.truthy(line, `${name} is listed`)
    t.true(line!.includes(digest), `${name} has the upstream digest ${digest}: ${line}`)
  }
  // containerd asked our server, naming the upstream (ns=registry.k8s.io).
  t.true(s.logLines.slice(before).some((l) => l.includes('/v2/pause/manifests/3.10?ns=registry.k8s.io') && l.includes(' 200 ')))
  for (const name of wanted) await ctr(['images', 'rm', name]).catch(() => undefined)
})

peerTest('docker pull through registry-mirrors for docker.io gets the bundle digest', ['dockerd'], async (t, peers) => {
  const s = await ensureServer(peers)
  const busybox = images.find((i) => i.name === 'docker.io/library/busybox:1.36')
  if (!busybox) return t.fail('the test images have no docker.io/library/busybox:1.36')
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-serve-dockerd-'))
  // A dockerd of our own: registry-mirrors is a daemon setting. Own namespaces on the peers' containerd.
  const dockerd = await startDockerd(dir, {
    containerd: peers.containerd?.address,
    daemonJson: {'registry-mirrors': [s.url], 'containerd-namespace': `kf-serve-moby-${process.pid}`, 'containerd-plugins-namespace': `kf-serve-plugins-${process.pid}`},
  })
  try {
    const env = {PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, DOCKER_CONFIG: join(dir, 'client')}
    const docker = (args: string[]) => run(DOCKER, ['-H', dockerd.host, ...args], {env, timeoutMs: 120_000})
    const before = s.logLines.length
    await docker(['pull', 'busybox:1.36'])
    const repoDigests = JSON.parse((await docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', 'busybox:1.36'])).stdout) as string[]
    t.true(repoDigests.includes(`busybox@${busybox.digest}`), `RepoDigests ${JSON.stringify(repoDigests)} hold ${busybox.digest}`)
    const served = s.logLines.slice(before)
    t.true(served.some((l) => / "(GET|HEAD) \/v2\/library\/busybox\/manifests\/1\.36" 200 /.test(l)), `dockerd pulled through serve:\n${served.join('\n')}`)
  } finally {
    await stopDaemon(dockerd.process)
  }
})
