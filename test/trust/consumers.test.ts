/**
 * Signed bundles against the real peers (issue 19): five attacks — a flipped byte in a blob (.sha256
 * regenerated), a swapped image (the bundle rebuilt with another image, the old signature copied), a signature by an
 * untrusted key, a stripped signature under a node policy, one signature where two are required — each refused by
 * `verify`, `load` (containerd and docker), `push` (registry), `serve` and install.sh (dash and busybox sh; docker too),
 * with the registry's catalog, containerd's namespace and docker's images unchanged afterwards. Then the good bundle
 * is accepted by each, so the refusals are the signatures' doing.
 */
import {createHash, randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test, {type ExecutionContext} from 'ava'
import {BundleReader} from '../../src/bundle/reader.js'
import {needPeers, type Peers} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {startCli, stopCli} from '../serve/helpers.js'
import {catalog} from './image-helpers.js'
import {makeBundle, type TestImageSpec} from '../load/make-bundle.js'
import {genKey, type TestKey} from './keys.js'
import {exec, type Run} from '../helpers/exec.js'


const runId = randomBytes(3).toString('hex')
const IMAGES: TestImageSpec[] = [
  {name: `registry.k8s.io/kf-trust-${runId}/pause:3.10`, role: 'pause', kind: 'docker', sources: ['kubeadm v1.31.6']},
  {name: `registry.k8s.io/kf-trust-${runId}/coredns/coredns:v1.11.3`, role: 'coredns', kind: 'oci'},
]
const OTHER_IMAGE: TestImageSpec = {name: `docker.io/kftrust${runId}/busybox:1.36`, role: 'extra', kind: 'oci'}
const NAMESPACE = `kf-trust-${runId}`
const REPO_PREFIX = `kf-trust-${runId}`

let work: string
let bin: string
let good: string // the signed bundle (by ed)
let ed: TestKey
let ec: TestKey
let other: TestKey
let emptyPolicy: string

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-trust-peers-'))
  bin = join(work, 'bin')
  await mkdir(bin)
  if (existsSync('/usr/bin/docker')) await symlink('/usr/bin/docker', join(bin, 'docker'))
  emptyPolicy = join(work, 'no-policy')
  ;[ed, ec, other] = await Promise.all([genKey(work, 'ed', 'ed25519'), genKey(work, 'ec', 'p256'), genKey(work, 'other', 'ed25519')])
  good = await bundleIn('good')
  const signed = await runCli(['sign', good, '--key', ed.key], {env: {KUBEFERRY_TRUSTED_KEYS: emptyPolicy}})
  if (signed.code !== 0) throw new Error(signed.stderr)
})
test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

/** A fresh copy of the test bundle (k8s.tar, .sha256, k8s.install.sh) in `work/name`; `images`: another bundle. */
async function bundleIn(name: string, images = IMAGES): Promise<string> {
  const dir = join(work, name)
  await mkdir(dir, {recursive: true})
  const path = join(dir, 'k8s.tar')
  await makeBundle(path, {images, salt: runId, checksumFile: true, platforms: ['linux/amd64', 'linux/arm64']})
  return path
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

interface Attack {
  name: string
  /** The bundle to use, made from `good`. */
  make: () => Promise<string>
  /** Trust arguments for kubeferry and install.sh, and the environment (the node policy). */
  args: string[]
  policy?: string
  refusal: RegExp
}

const ATTACKS: Attack[] = [
  {
    name: 'a flipped byte in a blob (its .sha256 regenerated)',
    make: async () => {
      const path = await bundleIn('flipped')
      await copyFile(`${good}.sig.json`, `${path}.sig.json`)
      const reader = await BundleReader.open(path)
      const layer = [...reader.index.entries.values()].filter((e) => e.name.startsWith('blobs/')).sort((a, b) => b.size - a.size)[0]
      const bytes = await readFile(path)
      bytes[layer.offset + 100] ^= 0x01
      await writeFile(path, bytes)
      await writeFile(`${path}.sha256`, `${sha(bytes)}  k8s.tar\n`)
      return path
    },
    args: ['--key', '$ED'],
    refusal: /is not the bundle that was signed: its sha256 is/,
  },
  {
    name: 'a swapped image (rebuilt bundle, old signature copied)',
    make: async () => {
      const path = await bundleIn('swapped', [IMAGES[0], OTHER_IMAGE])
      await copyFile(`${good}.sig.json`, `${path}.sig.json`)
      return path
    },
    args: ['--key', '$ED'],
    refusal: /is not the bundle that was signed: its (size|sha256) is/,
  },
  {
    name: 'a signature by an untrusted key',
    make: async () => {
      const path = await bundleIn('untrusted')
      const r = await runCli(['sign', path, '--key', other.key], {env: {KUBEFERRY_TRUSTED_KEYS: emptyPolicy}})
      if (r.code !== 0) throw new Error(r.stderr)
      return path
    },
    args: ['--key', '$ED'],
    refusal: /has 0 valid signature/,
  },
  {
    name: 'a stripped signature with a node policy present',
    make: async () => bundleIn('stripped'),
    args: [],
    policy: 'ed',
    refusal: /is not signed \(no k8s\.tar\.sig\.json beside it\)/,
  },
  {
    name: 'one signature where two are required',
    make: async () => {
      const path = await bundleIn('one-of-two')
      await copyFile(`${good}.sig.json`, `${path}.sig.json`)
      return path
    },
    args: ['--key', '$ED', '--key', '$EC', '--require-signatures', '2'],
    refusal: /has 1 valid signature/,
  },
]

async function ctrImages(peers: Peers): Promise<string> {
  return (await exec('ctr', ['--address', peers.containerd!.address, '--namespace', NAMESPACE, 'images', 'ls', '-q'])).stdout
}
async function dockerImages(peers: Peers): Promise<string[]> {
  const r = await exec('/usr/bin/docker', ['images', '--format', '{{.Repository}}:{{.Tag}}'], {DOCKER_HOST: peers.dockerd!.host})
  return r.stdout.split('\n').filter((l) => l.includes(runId)).sort()
}

/** Every consumer on `path` with `args`; each must end as `expect` says (refused with `refusal`, or accepted). */
async function consumers(t: ExecutionContext, peers: Peers, path: string, args: string[], policyDir: string, refusal?: RegExp): Promise<void> {
  const env = {KUBEFERRY_TRUSTED_KEYS: policyDir, PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`}
  const denv = {...env, DOCKER_HOST: peers.dockerd!.host}
  const script = path.replace(/\.tar$/, '.install.sh')
  const address = ['--address', peers.containerd!.address, '--namespace', NAMESPACE]
  const refused = refusal !== undefined
  const check = (what: string, r: Run | {code: number | null; stdout: string; stderr: string}, code: number): void => {
    if (refused) {
      t.is(r.code, code, `${what}: exit ${code} (${r.stderr.trim().split('\n').slice(-2).join(' | ')})`)
      t.regex(r.stderr, refusal, `${what}: says why`)
    } else t.is(r.code, 0, `${what}: accepted (${r.stderr})`)
  }
  check('verify', await runCli(['verify', path, ...args], {env}), 1)
  check('load (containerd)', await runCli(['load', path, ...address, ...args], {env}), 4)
  check('load (docker)', await runCli(['load', path, '--runtime', 'docker', ...args], {env: denv}), 4)
  const push = await runCli(['push', path, `${peers.registries.open.host}/${REPO_PREFIX}`, '--no-progress', ...args], {env})
  check('push', push, 1)
  if (refused) t.notRegex(push.stderr, /copy it again/, 'push: the hint is about the signature, not a damaged copy')
  if (refused) check('serve', await runCli(['serve', path, '--listen', '127.0.0.1:0', ...args], {env, timeoutMs: 60_000}), 1)
  else {
    // Accepted: it starts (its first line says what it serves), then is stopped; no fixed time to start in.
    const server = await startCli([path, '--listen', '127.0.0.1:0', ...args], 120_000, env)
    t.regex(server.first, /serving 2 images/, `serve: started (${server.stderr()})`)
    await stopCli(server)
  }
  check('install.sh (dash, containerd)', await exec('dash', [script, path, ...address, ...args], env), 4)
  if (existsSync('/usr/bin/busybox') || existsSync('/bin/busybox')) {
    check('install.sh (busybox sh, containerd)', await exec('busybox', ['sh', script, path, ...address, ...args], env), 4)
  }
  check('install.sh (dash, docker)', await exec('dash', [script, path, '--runtime', 'docker', ...args], denv), 4)
}

for (const attack of ATTACKS) {
  test.serial(`refused by verify, load, push, serve and install.sh: ${attack.name}`, async (t) => {
    const peers = needPeers(t, 'registries', 'containerd', 'dockerd')
    if (!peers) return
    const path = await attack.make()
    const policyDir = join(work, `policy-${attack.name.replace(/\W+/g, '-')}`)
    await mkdir(policyDir)
    if (attack.policy === 'ed') await copyFile(ed.pub, join(policyDir, 'ed.pem'))
    const args = attack.args.map((a) => (a === '$ED' ? ed.pub : a === '$EC' ? ec.pub : a))
    const before = {catalog: await catalog(peers, REPO_PREFIX), ctr: await ctrImages(peers), docker: await dockerImages(peers)}
    t.deepEqual(before.catalog, [], 'nothing of this run in the registry before')
    await consumers(t, peers, path, args, policyDir, attack.refusal)
    t.deepEqual(await catalog(peers, REPO_PREFIX), before.catalog, "the registry's catalog is unchanged")
    t.is(await ctrImages(peers), before.ctr, "containerd's image list is unchanged")
    t.deepEqual(await dockerImages(peers), before.docker, "docker's image list is unchanged")
  })
}

test.serial('the good signed bundle is accepted by each of them (with the node policy too)', async (t) => {
  const peers = needPeers(t, 'registries', 'containerd', 'dockerd')
  if (!peers) return
  const policyDir = join(work, 'policy-good')
  await mkdir(policyDir)
  await copyFile(ed.pub, join(policyDir, 'ed.pub'))
  try {
    await consumers(t, peers, good, [], policyDir)
    t.true((await catalog(peers, REPO_PREFIX)).length > 0, 'pushed')
    t.regex(await ctrImages(peers), /kf-trust-/, 'imported into containerd')
    t.true((await dockerImages(peers)).length > 0, 'loaded into docker')
  } finally {
    await exec('ctr', ['--address', peers.containerd!.address, '--namespace', NAMESPACE, 'images', 'rm', ...IMAGES.map((i) => i.name)])
    await exec('/usr/bin/docker', ['rmi', '-f', ...IMAGES.map((i) => i.name)], {DOCKER_HOST: peers.dockerd!.host})
  }
})
