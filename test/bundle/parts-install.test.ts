/**
 * install.sh reads a bundle in parts (issue 20): a bundle cut by coreutils `split` at a size that is no multiple of
 * 512 (so tar entries straddle the parts) into five parts, with NAME.install.sh beside them and no NAME.tar. Under
 * dash and busybox sh it finds the parts itself, checks them and imports into the real containerd and dockerd with
 * the upstream digests, with no joined copy on disk; each part fault (missing, extra, swapped, truncated, corrupted)
 * is refused with exit 4 naming the part, and the runtime is left as it was.
 */
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {copyFile, mkdtemp, readdir, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import test, {type ExecutionContext} from 'ava'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import {parseImageList} from '../../src/runtime/containerd.js'
import {needPeers, type Peers} from '../harness/peers.js'
import {makeBundle, type TestImageSpec} from '../load/make-bundle.js'
import {firstRunOnly, runCli} from '../helpers/cli.js'
import {genKey, type TestKey} from '../trust/keys.js'
import {FAULTS, faultyCopy, splitBundle, type SplitBundle} from './parts-helpers.js'
import {exec} from '../helpers/exec.js'


const runId = randomBytes(3).toString('hex')
const IMAGES: TestImageSpec[] = [
  {name: `registry.k8s.io/kf-parts-${runId}/pause:3.10`, role: 'pause', kind: 'docker', sources: ['kubeadm v1.31.6']},
  {name: `registry.k8s.io/kf-parts-${runId}/kube-proxy:v1.31.6`, role: 'kube-proxy', kind: 'docker'},
  {name: `docker.io/kfparts${runId}/busybox:1.36`, role: 'extra', kind: 'oci'},
]
let work: string
let meta: BundleMetadata
let split: SplitBundle
let signer: TestKey
let stranger: TestKey

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-parts-install-'))
  const whole = join(work, 'k8s.tar')
  meta = await makeBundle(whole, {images: IMAGES, salt: runId, layerSize: 300_000})
  signer = await genKey(work, 'signer', 'p256')
  stranger = await genKey(work, 'stranger', 'ed25519')
  const signed = await runCli(['sign', whole, '--key', signer.key])
  if (signed.code !== 0) throw new Error(`kubeferry sign failed: ${signed.stderr}`)
  const size = (await stat(whole)).size
  split = await splitBundle(whole, Math.floor(size / 4) - 13) // 5 parts, none a multiple of 512 bytes
  await copyFile(join(work, 'k8s.install.sh'), join(split.dir, 'k8s.install.sh'))
  await copyFile(`${whole}.sig.json`, `${split.bundlePath}.sig.json`)
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
  if (split) await rm(split.dir, {recursive: true, force: true})
})

const shells = ['dash', ...(existsSync('/bin/busybox') || existsSync('/usr/bin/busybox') ? ['busybox'] : [])]
const argv = (shell: string, script: string): string[] => (shell === 'busybox' ? ['sh', script] : [script])

async function ctrImages(peers: Peers, namespace: string) {
  const r = await exec('ctr', ['--address', peers.containerd!.address, '--namespace', namespace, 'images', 'ls'])
  return parseImageList(r.stdout)
}

async function clear(peers: Peers, namespace: string): Promise<void> {
  const names = [...(await ctrImages(peers, namespace)).keys()]
  if (names.length > 0) await exec('ctr', ['--address', peers.containerd!.address, '--namespace', namespace, 'images', 'rm', ...names])
}

if (firstRunOnly('never starts the CLI: the split, made in process')) test('the split is five parts whose sizes are no multiple of 512, and no NAME.tar beside them', (t) => {
  t.is(split.parts.length, 5)
  t.false(existsSync(split.bundlePath))
})

if (firstRunOnly('never starts the CLI: install.sh only')) for (const shell of shells) {
  test.serial(`install.sh under ${shell} finds the parts beside it and imports into containerd with the upstream digests`, async (t) => {
    const peers = needPeers(t, 'containerd')
    if (!peers) return
    const namespace = `kf-parts-${shell}-${runId}`
    try {
      const r = await exec(shell, [...argv(shell, join(split.dir, 'k8s.install.sh')), '--address', peers.containerd!.address, '--namespace', namespace])
      t.is(r.code, 0, r.stderr)
      t.regex(r.stdout, /checksum ok \(\S+k8s\.tar\.sha256\)/)
      t.regex(r.stdout, new RegExp(`${meta.images.length} images, ${meta.images.length} imported, 0 already present, 0 missing`))
      const images = await ctrImages(peers, namespace)
      for (const image of meta.images) t.is(images.get(image.name)?.digest, image.digest, image.name)
      t.deepEqual((await readdir(split.dir)).filter((f) => f.endsWith('.tar')), [], 'no joined copy was written')
    } finally {
      await clear(peers, namespace)
    }
  })
}

if (firstRunOnly('never starts the CLI: install.sh only')) test.serial('install.sh given a middle part, without NAME.tar.sha256, checks every part against NAME.parts.sha256 and imports', async (t) => {
  const peers = needPeers(t, 'containerd')
  if (!peers) return
  const copy = await faultyCopy(split, (s) => rm(`${s.bundlePath}.sha256`))
  const namespace = `kf-parts-list-${runId}`
  try {
    const r = await exec('dash', [join(split.dir, 'k8s.install.sh'), copy.parts[2], '--address', peers.containerd!.address, '--namespace', namespace])
    t.is(r.code, 0, r.stderr)
    t.regex(r.stdout, /5 parts checked against \S+k8s\.parts\.sha256/)
    const images = await ctrImages(peers, namespace)
    for (const image of meta.images) t.is(images.get(image.name)?.digest, image.digest, image.name)
  } finally {
    await clear(peers, namespace)
    await rm(copy.dir, {recursive: true, force: true})
  }
})

if (firstRunOnly('never starts the CLI: install.sh only')) test.serial('install.sh --key checks the signature over the whole bundle read from its parts: the signer accepted, another key refused', async (t) => {
  const script = join(split.dir, 'k8s.install.sh')
  const good = await exec('dash', [script, '--verify-only', '--key', signer.pub])
  t.is(good.code, 0, good.stderr)
  t.regex(good.stdout, /checksum ok \(\S+k8s\.tar\.sha256\), signed by \S+signer\.pub \(1 of 1 required\)/)
  const shell = shells.at(-1)! // busybox where it is installed
  const bad = await exec(shell, [...argv(shell, script), '--verify-only', '--key', stranger.pub])
  t.is(bad.code, 4, bad.stdout)
  t.regex(bad.stderr, /0 valid signature\(s\) from trusted keys where 1 by --key \S+stranger\.pub are required/)
})

/**
 * Into the shared dockerd: `load(env)` (with DOCKER_HOST set) must leave every image of the bundle there with the
 * config digest of `platform` as its image id, and no joined copy beside the parts. The images are removed before
 * and after.
 */
async function intoDocker(t: ExecutionContext, platform: string, load: (env: NodeJS.ProcessEnv) => Promise<{code: number | null; stderr: string}>): Promise<void> {
  const peers = needPeers(t, 'dockerd')
  if (!peers) return
  const env = {DOCKER_HOST: peers.dockerd!.host, PATH: '/usr/sbin:/usr/bin:/sbin:/bin'}
  const rmi = () => exec('/usr/bin/docker', ['rmi', '-f', ...meta.images.map((i) => i.name)], env)
  await rmi()
  try {
    const r = await load(env)
    t.is(r.code, 0, r.stderr)
    for (const image of meta.images) {
      const id = await exec('/usr/bin/docker', ['image', 'inspect', '--format', '{{.Id}}', image.name], env)
      t.is(id.stdout.trim(), image.platforms.find((p) => p.platform === platform)!.config.digest, image.name)
    }
    t.deepEqual((await readdir(split.dir)).filter((f) => f.endsWith('.tar')), [], 'no joined copy was written')
  } finally {
    await rmi()
  }
}

if (firstRunOnly('never starts the CLI: install.sh only')) test.serial('install.sh --runtime docker loads every image from the parts (image ids are the configs)', (t) =>
  intoDocker(t, 'linux/amd64', (env) => exec('dash', [join(split.dir, 'k8s.install.sh'), '--runtime', 'docker'], env)),
)

test.serial('kubeferry load --runtime docker streams the parts into docker load: every image with its config digest', (t) =>
  intoDocker(t, 'linux/arm64', (env) => runCli(['load', split.parts[0], '--runtime', 'docker', '--platform', 'linux/arm64'], {env})),
)

if (firstRunOnly('never starts the CLI: install.sh only')) for (const [fault, damage, pattern] of FAULTS) {
  for (const shell of shells) {
    test.serial(`install.sh under ${shell}: ${/^[aeiou]/.test(fault) ? 'an' : 'a'} ${fault} part is refused with exit 4 naming the part; containerd unchanged`, async (t) => {
      const peers = needPeers(t, 'containerd')
      if (!peers) return
      const copy = await faultyCopy(split, damage)
      await copyFile(join(split.dir, 'k8s.install.sh'), join(copy.dir, 'k8s.install.sh'))
      const namespace = `kf-parts-${fault}-${shell}-${runId}`
      try {
        const r = await exec(shell, [...argv(shell, join(copy.dir, 'k8s.install.sh')), '--address', peers.containerd!.address, '--namespace', namespace])
        t.is(r.code, 4, `${r.stdout}\n${r.stderr}`)
        t.regex(r.stderr, pattern)
        t.regex(r.stderr, /^kubeferry: error: .*Nothing was imported/m)
        t.is((await ctrImages(peers, namespace)).size, 0, 'nothing imported')
        t.deepEqual((await readdir(copy.dir)).filter((f) => f.endsWith('.tar')).map((f) => basename(f)), [], 'no joined copy')
      } finally {
        await clear(peers, namespace)
        await rm(copy.dir, {recursive: true, force: true})
      }
    })
  }
}
