/**
 * `kubeferry create` end to end against the real peers: one bundle of the test images (11 images incl. kubeadm's and
 * the runtimes' pause, the coredns sub-path and a docker.io image; linux/amd64 + linux/arm64) built through
 * `--mirror registry.k8s.io=<open registry> --mirror docker.io=<same>`, then read by the real tools:
 * docker 20.10 `load`, `ctr images import` (plain, sparse indexes), skopeo `docker-archive:` and `oci-archive:`;
 * two builds are byte-identical; the docker fragment loads the arm64 images.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdir, mkdtemp, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {repoTag} from '../../src/bundle/docker-manifest.js'
import {familiarReference, parseReference} from '../../src/oci/reference.js'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import type {Digest} from '../../src/oci/digest.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'
import {firstRunOnly, runCli} from '../helpers/cli.js'
const PLATFORMS = ['linux/amd64', 'linux/arm64']

interface Built {
  output: string
  summary: {sha256: string; images: number; platforms: string[]; uniqueBlobs: number; downloadedBlobs: number; size: number; blobBytes: number}
}

let work = ''
let first: Built | undefined
let second: Built | undefined
let buildError: string | undefined

async function create(peers: Peers, output: string, cache: string): Promise<Built> {
  const url = peers.registries.open.url
  const args = [
    'create', '-o', output, '--cache-dir', cache, '--json', '--no-progress',
    '--kubernetes-version', 'v1.31.6', '--runtime', 'containerd@1.7',
    ...peers.images.map((i) => ['--image', i.name]).flat(),
    ...PLATFORMS.flatMap((p) => ['--platform', p]),
    '--mirror', `registry.k8s.io=${url}`, '--mirror', `docker.io=${url}`,
  ]
  const result = await runCli(args, {env: {SOURCE_DATE_EPOCH: ''}})
  if (result.code !== 0) throw new Error(`create failed (${result.code}): ${result.stderr}`)
  return {output, summary: JSON.parse(result.stdout) as Built['summary']}
}

test.before(async () => {
  if (missingPeer(['registries'])) return
  const peers = loadPeers()!
  work = await mkdtemp(join(tmpdir(), 'kubeferry-create-test-'))
  try {
    first = await create(peers, join(work, 'k8s.tar'), join(work, 'cache-1'))
    await mkdir(join(work, 'again'))
    second = await create(peers, join(work, 'again', 'k8s.tar'), join(work, 'cache-2'))
  } catch (error) {
    buildError = (error as Error).message
  }
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

function built(t: {fail: (m: string) => void}): Built | undefined {
  if (!first) t.fail(`bundle was not built: ${buildError ?? 'unknown'}`)
  return first
}

function metadata(bundle: string): BundleMetadata {
  return JSON.parse(execFileSync('tar', ['-xOf', bundle, 'kubeferry/bundle.json'], {encoding: 'utf8'})) as BundleMetadata
}

peerTest('create: every image of the set, both platforms, upstream digests, sparse flags', ['registries'], async (t, peers) => {
  const b = built(t)
  if (!b) return
  t.true(peers.images.length >= 8)
  t.is(b.summary.images, peers.images.length)
  t.deepEqual(b.summary.platforms, PLATFORMS)
  const meta = metadata(b.output)
  for (const image of peers.images) {
    const got = meta.images.find((i) => i.name === image.name)
    t.truthy(got, image.name)
    t.is(got?.digest, image.digest as Digest, `${image.name} keeps the registry's digest`)
    t.deepEqual(got?.platforms.map((p) => p.platform), PLATFORMS)
    t.false(got?.sparse, 'both platforms carried: not sparse')
  }
  t.is((await stat(b.output)).size, b.summary.size)
  t.true(b.summary.size <= b.summary.blobBytes * 1.01 + 256 * 1024, 'bundle ≈ unique blobs + small metadata')
  t.is(meta.images.find((i) => i.name === 'registry.k8s.io/pause:3.8')?.role, 'sandbox')
  t.is(meta.images.find((i) => i.name === 'registry.k8s.io/pause:3.10')?.role, 'pause')
})

peerTest('create: two builds (separate caches) are byte-identical', ['registries'], (t) => {
  const b = built(t)
  if (!b) return
  if (!second) return t.fail(`second build failed: ${buildError ?? '?'}`)
  t.true(second.summary.downloadedBlobs > 0, 'second build really downloaded (cold cache)')
  t.is(b.summary.sha256, second.summary.sha256)
  const sums = execFileSync('sha256sum', [b.output, second.output], {encoding: 'utf8'}).split('\n').map((l) => l.split(' ')[0])
  t.is(sums[0], sums[1])
  t.is(sums[0], b.summary.sha256)
})

peerTest('create: verify and inspect accept the bundle', ['registries'], async (t) => {
  const b = built(t)
  if (!b) return
  const verify = await runCli(['verify', b.output, '--json'])
  t.is(verify.code, 0, verify.stdout + verify.stderr)
  t.true((JSON.parse(verify.stdout) as {ok: boolean}).ok)
  const inspect = await runCli(['inspect', b.output])
  t.is(inspect.code, 0, inspect.stderr)
  t.regex(inspect.stdout, /registry\.k8s\.io\/pause:3\.8: containerd 1\.7\.\d+ default sandbox image/)
  t.regex(inspect.stdout, /registry\.k8s\.io\/pause:3\.10: kubeadm v1\.31\.6/)
})

peerTest('docker load lists every RepoTag; the arm64 fragment loads arm64 images', ['registries', 'dockerd'], (t, peers) => {
  const b = built(t)
  if (!b) return
  const docker = (...args: string[]) => execFileSync('/usr/bin/docker', ['-H', peers.dockerd!.host, ...args], {encoding: 'utf8'})
  const loaded = docker('load', '-i', b.output)
  const names = loaded.split('\n').filter((l) => l.startsWith('Loaded image: ')).map((l) => l.slice('Loaded image: '.length)).sort()
  // docker prints the familiar form of the fully qualified RepoTags
  const expected = peers.images.map((i) => familiarReference(parseReference(repoTag(i.name)!))).sort()
  t.deepEqual(names, expected)
  t.true(expected.includes('busybox:1.36'), 'docker.io images get the familiar name')
  t.is(docker('image', 'inspect', '--format', '{{.Architecture}}', 'registry.k8s.io/coredns/coredns:v1.11.3').trim(), 'amd64')

  // bundle minus its end marker + the platform's fragment: docker takes the later manifest.json
  const size = b.summary.size
  const script = `{ head -c ${size - 1024} '${b.output}'; tar -xOf '${b.output}' kubeferry/docker/linux-arm64.tar; } | /usr/bin/docker -H '${peers.dockerd!.host}' load`
  const arm = execFileSync('sh', ['-c', script], {encoding: 'utf8'})
  t.is(arm.split('\n').filter((l) => l.startsWith('Loaded image: ')).length, peers.images.length)
  for (const name of ['registry.k8s.io/pause:3.10', 'registry.k8s.io/kube-apiserver:v1.31.6', 'busybox:1.36']) {
    t.is(docker('image', 'inspect', '--format', '{{.Os}}/{{.Architecture}}', name).trim(), 'linux/arm64', name)
  }
  for (const image of peers.images) docker('rmi', '-f', repoTag(image.name)!)
})

peerTest('ctr images import (plain, sparse-capable) names every image with its upstream digest', ['registries', 'containerd'], (t, peers) => {
  const b = built(t)
  if (!b) return
  // A private namespace: same import code path as k8s.io, without touching what other tests keep there.
  const namespace = `kf-bundle-${process.pid}`
  const ctr = (...args: string[]) => execFileSync('ctr', ['--address', peers.containerd!.address, '-n', namespace, ...args], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
  try {
    ctr('images', 'import', b.output)
    const rows = ctr('images', 'ls').trim().split('\n').slice(1).map((l) => l.split(/\s+/))
    const digests = new Map(rows.map((r) => [r[0], r[2]]))
    for (const image of peers.images) t.is(digests.get(image.name), image.digest, image.name)
    const check = ctr('images', 'check')
    t.notRegex(check, /incomplete|missing/i)
  } finally {
    const names = spawnSync('ctr', ['--address', peers.containerd!.address, '-n', namespace, 'images', 'ls', '-q'], {encoding: 'utf8'}).stdout.trim().split('\n').filter(Boolean)
    if (names.length) spawnSync('ctr', ['--address', peers.containerd!.address, '-n', namespace, 'images', 'rm', ...names])
  }
})

peerTest('ctr import of a one-platform (sparse) bundle keeps the index digests', ['registries', 'containerd'], async (t, peers) => {
  const url = peers.registries.open.url
  const output = join(work, 'sparse.tar')
  const result = await runCli(['create', '-o', output, '--cache-dir', join(work, 'cache-1'), '--json', '--no-progress',
    '--image', 'registry.k8s.io/pause:3.10', '--image', 'docker.io/library/busybox:1.36', '--platform', 'linux/arm64', '--mirror', `registry.k8s.io=${url}`, '--mirror', `docker.io=${url}`])
  t.is(result.code, 0, result.stderr)
  t.is((JSON.parse(result.stdout) as {downloadedBlobs: number}).downloadedBlobs, 0, 'all blobs came from the cache of the first build')
  const meta = metadata(output)
  t.true(meta.images.every((i) => i.sparse))
  const namespace = `kf-sparse-${process.pid}`
  const ctr = (...args: string[]) => execFileSync('ctr', ['--address', peers.containerd!.address, '-n', namespace, ...args], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
  try {
    ctr('images', 'import', '--platform', 'linux/arm64', output)
    const rows = ctr('images', 'ls').trim().split('\n').slice(1).map((l) => l.split(/\s+/))
    for (const name of ['registry.k8s.io/pause:3.10', 'docker.io/library/busybox:1.36']) {
      t.is(rows.find((r) => r[0] === name)?.[2], peers.images.find((i) => i.name === name)!.digest, name)
    }
  } finally {
    const names = spawnSync('ctr', ['--address', peers.containerd!.address, '-n', namespace, 'images', 'ls', '-q'], {encoding: 'utf8'}).stdout.trim().split('\n').filter(Boolean)
    if (names.length) spawnSync('ctr', ['--address', peers.containerd!.address, '-n', namespace, 'images', 'rm', ...names])
  }
})

peerTest('skopeo reads every image as docker-archive: and oci-archive:', ['registries', 'skopeo'], (t, peers) => {
  const b = built(t)
  if (!b) return
  for (const image of peers.images) {
    const dockerArchive = JSON.parse(execFileSync(peers.tools.skopeo, ['inspect', `docker-archive:${b.output}:${image.name}`], {encoding: 'utf8'})) as {Architecture: string; Layers: string[]}
    t.is(dockerArchive.Architecture, 'amd64', `${image.name} docker-archive`)
    // docker-archive: reports uncompressed (diff) digests, so compare the count
    const amd64 = image.platforms.find((p) => p.platform === 'linux/amd64')!
    t.is(dockerArchive.Layers.length, amd64.layers.length, `${image.name} layers`)
    const oci = JSON.parse(execFileSync(peers.tools.skopeo, ['inspect', `oci-archive:${b.output}:${image.name}`], {encoding: 'utf8'})) as {Digest: string; Architecture: string}
    t.is(oci.Digest, image.digest, `${image.name} oci-archive keeps the upstream digest`)
  }
})

if (firstRunOnly('argument parsing and messages')) test('create: bad input gives one clear line and a non-zero exit', async (t) => {
  const out = join(tmpdir(), `kubeferry-bad-${process.pid}.tar`)
  const noImages = await runCli(['create', '-o', out])
  t.is(noImages.code, 1)
  t.regex(noImages.stderr, /error: no images given\n\s+hint: pass --kubernetes-version/)
  const badPlatform = await runCli(['create', '-o', out, '--image', 'pause:3.10', '--platform', 'linux'])
  t.is(badPlatform.code, 1)
  t.regex(badPlatform.stderr, /invalid platform "linux"/)
  t.notRegex(noImages.stderr + badPlatform.stderr, /\n\s+at /)
})
