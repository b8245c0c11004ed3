/** `images --digests --lock FILE` against the harness's real docker-registry, read back with readLockfile(). */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {readLockfile} from '../../src/kube/lockfile.js'
import {formatPlatform, normalizePlatform, parsePlatform} from '../../src/oci/platform.js'
import {parseReference} from '../../src/oci/reference.js'
import {peerTest} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'

const images = (args: string[]) => runCli(['images', ...args])

let dir: string
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeferry-lock-'))
})
test.after.always(async () => {
  await rm(dir, {recursive: true, force: true})
})

peerTest('lockfile round trip: --mirror keeps canonical names, digests match what the registry holds', ['registries'], async (t, peers) => {
  const open = peers.registries.open
  const chosen = peers.images.slice(0, 2)
  t.true(chosen.length > 0, 'the harness pushed test images')
  const mirrors = [...new Set(chosen.map((i) => parseReference(i.name).registry))].flatMap((r) => ['--mirror', `${r}=${open.url}`])
  const lock = join(dir, 'images.lock.json')
  const r = await images([...chosen.flatMap((i) => ['--image', i.name]), ...mirrors, '--lock', lock])
  t.is(r.code, 0, r.stderr)
  t.deepEqual(r.stdout.trim().split('\n'), chosen.map((i) => `${i.name}@${i.digest}`))

  const read = await readLockfile(lock)
  t.is(read.version, 1)
  t.deepEqual(
    read.images.map((i) => ({reference: i.reference, digest: i.digest, mediaType: i.mediaType, platforms: [...i.platforms].sort()})),
    chosen.map((i) => ({reference: i.name, digest: i.digest, mediaType: i.mediaType, platforms: i.platforms.map((p) => formatPlatform(normalizePlatform(parsePlatform(p.platform)))).sort()})),
  )
})

peerTest('kubeadm v1.31.6 + containerd@1.7 locked through a mirror of registry.k8s.io', ['registries'], async (t, peers) => {
  const lock = join(dir, 'kubeadm.lock.json')
  const r = await images(['--kubernetes-version', 'v1.31.6', '--runtime', 'containerd@1.7', '--mirror', `registry.k8s.io=${peers.registries.open.url}`, '--lock', lock])
  t.is(r.code, 0, r.stderr)
  const read = await readLockfile(lock)
  t.is(read.kubernetesVersion, 'v1.31.6')
  const byName = new Map(peers.images.map((i) => [i.name, i.digest]))
  t.deepEqual(read.images.map((i) => i.reference), [
    'registry.k8s.io/kube-apiserver:v1.31.6',
    'registry.k8s.io/kube-controller-manager:v1.31.6',
    'registry.k8s.io/kube-scheduler:v1.31.6',
    'registry.k8s.io/kube-proxy:v1.31.6',
    'registry.k8s.io/coredns/coredns:v1.11.3',
    'registry.k8s.io/pause:3.10',
    'registry.k8s.io/etcd:3.5.15-0',
    'registry.k8s.io/pause:3.8',
  ])
  for (const image of read.images) t.is(byName.get(image.reference), image.digest as string, image.reference)
})

peerTest('--digests --json against the registry by its own host; a missing tag is one clear error', ['registries'], async (t, peers) => {
  const open = peers.registries.open
  const image = peers.images[0]
  const ref = `${open.host}/${image.repository}:${image.tag}`
  const r = await images(['--image', ref, '--digests', '--json'])
  t.is(r.code, 0, r.stderr)
  const doc = JSON.parse(r.stdout) as {images: Array<{name: string; digest: string}>}
  t.is(doc.images[0].digest, image.digest)

  const missing = await images(['--image', `${open.host}/${image.repository}:no-such-tag`, '--digests'])
  t.not(missing.code, 0)
  t.regex(missing.stderr.split('\n')[0], /^error: could not resolve 1 of 1 images: .*no-such-tag/)
})

test('readLockfile rejects malformed lockfiles with the reason', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['{"version": 2, "images": []}', /expected \{"version": 1/],
    ['{"version": 1, "images": [{"reference": "nginx:1", "digest": "sha256:abc", "mediaType": "x", "platforms": []}]}', /images\[0\]\.digest must be sha256/],
    ['not json', /not JSON/],
  ]
  for (const [text, message] of cases) {
    const file = join(dir, `bad-${Math.random().toString(36).slice(2)}.json`)
    await writeFile(file, text)
    await t.throwsAsync(readLockfile(file), {message})
  }
  await t.throwsAsync(readLockfile(join(dir, 'absent.json')), {message: /cannot read lockfile .*ENOENT/})
})
