/**
 * install.sh (under dash and busybox sh) and `kubeferry load` against the real containerd and dockerd peers:
 * upstream digests, pinned pause, idempotent reruns, and the failure cases (platform missing, corrupt bundle,
 * no runtime, full disk) leaving the image store as it was; preflight warnings; shellcheck.
 */
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {copyFile, mkdir, mkdtemp, open, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import test from 'ava'
import {EXIT, planImport} from '../../src/bundle/import-plan.js'
import {BundleReader} from '../../src/bundle/reader.js'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import {parseImageList} from '../../src/runtime/containerd.js'
import {needPeers, type Peers} from '../harness/peers.js'
import {firstRunOnly, runCli} from '../helpers/cli.js'
import {makeBundle, type TestImageSpec} from './make-bundle.js'
import {exec} from '../helpers/exec.js'



let work: string
let bin: string // PATH entry with docker → /usr/bin/docker (never the unrelated /usr/local/bin/docker)
let bundle: string
let script: string
let meta: BundleMetadata
const runId = randomBytes(3).toString('hex')

// Names private to this test file so that concurrent tests of other files on the same docker daemon do not collide.
const DOCKER_IMAGES: TestImageSpec[] = [
  {name: `registry.k8s.io/kf-load-${runId}/pause:3.10`, role: 'pause', kind: 'docker', sources: ['kubeadm v1.31.6']},
  {name: `registry.k8s.io/kf-load-${runId}/kube-proxy:v1.31.6`, role: 'kube-proxy', kind: 'docker'},
  {name: `registry.k8s.io/kf-load-${runId}/coredns/coredns:v1.11.3`, role: 'coredns', kind: 'oci'},
  {name: `docker.io/kfload${runId}/busybox:1.36`, role: 'extra', kind: 'oci'},
]
let dockerBundle: string
let dockerMeta: BundleMetadata

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-load-test-'))
  bin = join(work, 'bin')
  await mkdir(bin)
  if (existsSync('/usr/bin/docker')) await symlink('/usr/bin/docker', join(bin, 'docker'))
  bundle = join(work, 'k8s.tar')
  meta = await makeBundle(bundle, {salt: runId})
  script = join(work, 'k8s.install.sh')
  dockerBundle = join(work, 'docker', 'd.tar')
  await mkdir(dirname(dockerBundle))
  dockerMeta = await makeBundle(dockerBundle, {images: DOCKER_IMAGES, salt: `d${runId}`})
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, ...extra})
const ns = (label: string): string => `kf-load-${label}-${runId}`

async function ctrImages(peers: Peers, namespace: string) {
  const r = await exec('ctr', ['--address', peers.containerd!.address, '--namespace', namespace, 'images', 'ls'])
  return parseImageList(r.stdout)
}

/** Blobs in a namespace's content store (what a failed import may leave behind until containerd's GC). */
async function ctrContent(peers: Peers, namespace: string): Promise<string[]> {
  const r = await exec('ctr', ['--address', peers.containerd!.address, '--namespace', namespace, 'content', 'ls', '-q'])
  return r.stdout.split('\n').filter((line) => line.startsWith('sha256:'))
}

async function clearNamespace(peers: Peers, namespace: string, names: string[]): Promise<void> {
  await exec('ctr', ['--address', peers.containerd!.address, '--namespace', namespace, 'images', 'rm', ...names])
}

function expectContainerdHasBundle(t: import('ava').ExecutionContext, images: Map<string, {digest: string; labels: string[]}>, m: BundleMetadata): void {
  for (const image of m.images) {
    t.is(images.get(image.name)?.digest, image.digest, `${image.name} has the upstream digest`)
    // Also named by digest (repoDigests for the CRI), as a registry pull would record it.
    const byDigest = `${image.name.slice(0, image.name.lastIndexOf(':'))}@${image.digest}`
    t.is(images.get(byDigest)?.digest, image.digest, `${byDigest} is present`)
  }
  const pause = m.images.filter((i) => i.role === 'pause')
  t.true(pause.length > 0)
  for (const p of pause) t.true(images.get(p.name)?.labels.includes('io.cri-containerd.pinned=pinned'), `${p.name} is pinned`)
}

if (firstRunOnly('never starts the CLI: a static check of the script')) test('the rendered install.sh is shellcheck clean (sh dialect)', async (t) => {
  const r = await exec('shellcheck', ['-s', 'sh', script])
  t.is(r.code, 0, r.stdout)
  const inside = await BundleReader.open(bundle).then((reader) => reader.readFile('kubeferry/install.sh', 1e7))
  t.is(inside.toString(), await readFile(script, 'utf8'), 'the script inside the bundle is the one beside it')
})

if (firstRunOnly('never starts the CLI: the plan, in process')) test('the plan: node platform missing is refused with exit code 5; data lines cover every image', (t) => {
  const error = t.throws(() => planImport(meta, 'linux/s390x'))
  t.regex(error!.message, /holds linux\/amd64, linux\/arm64 but not linux\/s390x/)
  t.is((error as unknown as {exitCode: number}).exitCode, EXIT.noPlatform)
  const plan = planImport(meta, 'linux/arm64/v8')
  t.is(plan.platform, 'linux/arm64')
  t.is(plan.images.length, meta.images.length)
  t.deepEqual(plan.docker, {source: 'fragment', path: 'kubeferry/docker/linux-arm64.tar'})
})

if (firstRunOnly('never starts the CLI: install.sh of a bundle made in process (e2e/node-import runs create → install.sh)')) for (const shell of ['dash', 'busybox'] as const) {
  test.serial(`install.sh under ${shell} imports into containerd with upstream digests, pins pause, rerun imports nothing`, async (t) => {
    const peers = needPeers(t, 'containerd')
    if (!peers) return
    if (shell === 'busybox' && !existsSync('/usr/bin/busybox') && !existsSync('/bin/busybox')) return t.pass('busybox is not installed')
    const namespace = shell === 'dash' ? 'k8s.io' : ns('busybox')
    await clearNamespace(peers, namespace, meta.images.map((i) => i.name))
    const argv = shell === 'dash' ? [script] : ['sh', script]
    const first = await exec(shell, [...argv, '--address', peers.containerd!.address, '--namespace', namespace], env())
    t.is(first.code, 0, first.stderr)
    t.regex(first.stdout, /checksum ok/)
    t.regex(first.stdout, new RegExp(`summary: linux/amd64 into containerd: ${meta.images.length} images, ${meta.images.length} imported, 0 already present, 0 missing, 1 pinned`))
    const listed = await exec('ctr', ['--address', peers.containerd!.address, '--namespace', namespace, 'images', 'ls'])
    t.regex(listed.stdout, /io\.cri-containerd\.pinned=pinned/)
    expectContainerdHasBundle(t, parseImageList(listed.stdout), meta)
    const started = Date.now()
    const second = await exec(shell, [...argv, '--address', peers.containerd!.address, '--namespace', namespace], env())
    t.is(second.code, 0, second.stderr)
    t.regex(second.stdout, new RegExp(`${meta.images.length} images, 0 imported, ${meta.images.length} already present, 0 missing, 0 pinned`))
    t.notRegex(second.stdout, /^imported|checksum/m, 'a rerun neither imports nor re-reads the bundle')
    t.log(`rerun took ${Date.now() - started} ms`)
    if (namespace === 'k8s.io') await clearNamespace(peers, namespace, meta.images.map((i) => i.name))
  })
}

test.serial('kubeferry load imports into containerd the same way, and says the same summary as install.sh', async (t) => {
  const peers = needPeers(t, 'containerd')
  if (!peers) return
  const namespace = ns('cli')
  const first = await runCli(['load', bundle, '--address', peers.containerd!.address, '--namespace', namespace], {env: env()})
  t.is(first.code, 0, first.stderr)
  t.regex(first.stdout, /pinned registry\.k8s\.io\/pause:3\.10 \(io\.cri-containerd\.pinned=pinned\)/)
  expectContainerdHasBundle(t, await ctrImages(peers, namespace), meta)
  const again = await runCli(['load', bundle, '--address', peers.containerd!.address, '--namespace', namespace, '--json'], {env: env()})
  t.is(again.code, 0, again.stderr)
  const result = JSON.parse(again.stdout) as {imported: string[]; present: string[]; summary: string}
  t.deepEqual(result.imported, [])
  t.is(result.present.length, meta.images.length)
  const viaScript = await exec('dash', [script, '--address', peers.containerd!.address, '--namespace', namespace], env())
  t.is(viaScript.code, 0, viaScript.stderr)
  t.is(viaScript.stdout.trim().split('\n').at(-1), result.summary, 'install.sh and kubeferry load print the same summary')
})

test.serial('into docker: install.sh (docker platform) and kubeferry load (other platform via the fragment) load every tag', async (t) => {
  const peers = needPeers(t, 'dockerd')
  if (!peers) return
  const denv = env({DOCKER_HOST: peers.dockerd!.host})
  const rmi = () => exec('/usr/bin/docker', ['rmi', '-f', ...dockerMeta.images.map((i) => i.name)], denv)
  await rmi()
  const s = await exec('dash', [join(dirname(dockerBundle), 'd.install.sh'), '--runtime', 'docker'], denv)
  t.is(s.code, 0, s.stderr)
  const listed = await exec('/usr/bin/docker', ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}', '--no-trunc'], denv)
  for (const image of dockerMeta.images) {
    const familiar = image.name.replace(/^docker\.io\/(library\/)?/, '')
    const amd64 = image.platforms.find((p) => p.platform === 'linux/amd64')!
    t.true(listed.stdout.includes(`${familiar} ${amd64.config.digest}`), `docker images lists ${familiar} with its amd64 image id`)
  }
  const again = await exec('dash', [join(dirname(dockerBundle), 'd.install.sh'), '--runtime', 'docker'], denv)
  t.regex(again.stdout, /0 imported, 4 already present/)

  await rmi()
  const l = await runCli(['load', dockerBundle, '--runtime', 'docker', '--platform', 'linux/arm64'], {env: denv})
  t.is(l.code, 0, l.stderr)
  for (const image of dockerMeta.images) {
    const arm64 = image.platforms.find((p) => p.platform === 'linux/arm64')!
    const inspect = await exec('/usr/bin/docker', ['image', 'inspect', '--format', '{{.Id}} {{.Architecture}}', image.name], denv)
    t.is(inspect.stdout.trim(), `${arm64.config.digest} arm64`, `${image.name} is the arm64 image`)
  }
  await rmi()
})

/** The install.sh `create` wrote beside a bundle (each script embeds its own bundle's plan). */
const scriptFor = (tarPath: string): string => tarPath.replace(/\.tar$/, '.install.sh')

async function corrupt(source: string, target: string): Promise<void> {
  await copyFile(source, target)
  await copyFile(scriptFor(source), scriptFor(target))
  const reader = await BundleReader.open(source)
  const layer = meta.images[1].platforms[0].layers[1]
  const entry = reader.blobEntry(layer.digest)!
  const handle = await open(target, 'r+')
  const byte = Buffer.alloc(1)
  await handle.read(byte, 0, 1, entry.offset + 10)
  byte[0] ^= 0xff
  await handle.write(byte, 0, 1, entry.offset + 10)
  await handle.close()
}

test.serial('failures leave the store as it was: platform missing, corrupt bundle (with and without .sha256), no runtime', async (t) => {
  const peers = needPeers(t, 'containerd')
  if (!peers) return
  const address = peers.containerd!.address
  const namespace = ns('fail')
  const cases: Array<{what: string; file: string; args: string[]; code: number; message: RegExp; env?: NodeJS.ProcessEnv}> = []

  const otherArch = join(work, 'other', 'k8s.tar')
  await mkdir(dirname(otherArch))
  await makeBundle(otherArch, {platforms: ['linux/arm64', 'linux/ppc64le'], salt: runId})
  cases.push({what: 'node platform missing', file: otherArch, args: [], code: EXIT.noPlatform, message: /holds linux\/arm64,? linux\/ppc64le but not linux\/amd64/})

  const bad = join(work, 'bad', 'k8s.tar')
  await mkdir(dirname(bad))
  await corrupt(bundle, bad)
  await copyFile(`${bundle}.sha256`, `${bad}.sha256`)
  cases.push({what: 'corrupt bundle, .sha256 beside it', file: bad, args: [], code: EXIT.badBundle, message: /does not match .*\.sha256/})
  const bad2 = join(work, 'bad2', 'k8s.tar')
  await mkdir(dirname(bad2))
  await corrupt(bundle, bad2)
  cases.push({what: 'corrupt bundle, no .sha256', file: bad2, args: [], code: EXIT.badBundle, message: /corrupt/})
  cases.push({what: 'no containerd at the address', file: bundle, args: ['--runtime', 'containerd', '--address', join(work, 'nothing.sock')], code: EXIT.noRuntime, message: /no containerd socket at/})
  // a PATH with the script's coreutils-ish tools and no runtime CLI at all
  const coreOnly = join(work, 'core-only')
  await mkdir(coreOnly, {recursive: true})
  for (const tool of ['awk', 'basename', 'cat', 'df', 'dirname', 'grep', 'head', 'mkdir', 'mktemp', 'rm', 'sed', 'sha256sum', 'tail', 'tar', 'tr', 'uname', 'wc']) {
    for (const dir of ['/usr/bin', '/bin']) {
      if (existsSync(join(dir, tool)) && !existsSync(join(coreOnly, tool))) await symlink(join(dir, tool), join(coreOnly, tool))
    }
  }
  cases.push({what: 'no runtime at all', file: bundle, args: ['--runtime', 'auto'], code: EXIT.noRuntime, message: /no container runtime found; looked for: .*containerd\.sock/, env: {PATH: coreOnly, CONTAINERD_ADDRESS: ''}})

  for (const c of cases) {
    const addressArgs = c.args.length > 0 ? c.args : ['--address', address]
    const e = c.env ? {...env(), ...c.env} : env()
    // dash by absolute path so that it runs even with an empty PATH
    const s = await exec('/usr/bin/dash', [scriptFor(c.file), c.file, ...addressArgs, '--namespace', namespace], e)
    t.is(s.code, c.code, `install.sh, ${c.what}: ${s.stderr}`)
    t.regex(s.stderr, c.message, `install.sh, ${c.what}`)
    const l = await runCli(['load', c.file, ...addressArgs, '--namespace', namespace], {env: e})
    t.is(l.code, c.code, `kubeferry load, ${c.what}: ${l.stderr}`)
    t.regex(l.stderr, c.message, `kubeferry load, ${c.what}`)
    t.is((await ctrImages(peers, namespace)).size, 0, `${c.what}: nothing imported`)
    // install.sh hashes while ctr reads the tar; on a mismatch ctr never gets the archive's end and the blobs it
    // stored meanwhile are collected before the script exits
    t.deepEqual(await ctrContent(peers, namespace), [], `${c.what}: no content left in the store`)
  }
})

if (firstRunOnly('never starts the CLI: install.sh only')) test.serial('install.sh: an image listed with its digest but incomplete content is imported again; a broken openssl and no dd fall back to sha256sum and head', async (t) => {
  const peers = needPeers(t, 'containerd')
  if (!peers) return
  const address = peers.containerd!.address
  const namespace = ns('incomplete')
  // a PATH with the script's tools and ctr, an openssl that fails (the checksum comes from sha256sum) and no dd
  // (ctr reads the bundle through head -c)
  const brokenBin = join(work, 'broken-openssl')
  await mkdir(brokenBin, {recursive: true})
  await writeFile(join(brokenBin, 'openssl'), '#!/bin/sh\nexit 1\n', {mode: 0o755})
  for (const tool of ['awk', 'basename', 'cat', 'ctr', 'df', 'dirname', 'grep', 'head', 'mkdir', 'mktemp', 'rm', 'sed', 'sha256sum', 'tail', 'tar', 'tr', 'uname', 'wc']) {
    for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
      if (existsSync(join(dir, tool)) && !existsSync(join(brokenBin, tool))) await symlink(join(dir, tool), join(brokenBin, tool))
    }
  }
  const brokenEnv = env({PATH: brokenBin})
  const first = await exec('/usr/bin/dash', [script, '--address', address, '--namespace', namespace], brokenEnv) // by path: PATH has no dash
  t.is(first.code, 0, first.stderr)
  t.regex(first.stdout, /checksum ok/)
  t.regex(first.stdout, new RegExp(`${meta.images.length} imported, 0 already present, 0 missing, 1 pinned`))
  const bad = join(work, 'bad-openssl', 'k8s.tar')
  await mkdir(dirname(bad), {recursive: true})
  await corrupt(bundle, bad)
  await copyFile(`${bundle}.sha256`, `${bad}.sha256`)
  const refused = await exec('/usr/bin/dash', [scriptFor(bad), bad, '--address', address, '--namespace', ns('bad-openssl')], brokenEnv)
  t.is(refused.code, EXIT.badBundle, refused.stderr)
  t.regex(refused.stderr, /does not match .*\.sha256 \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\)/)

  // one layer of one image removed from the content store: the name and digest are still listed
  const image = meta.images[1]
  const layer = image.platforms.find((p) => p.platform === 'linux/amd64')!.layers.at(-1)!
  const removed = await exec('ctr', ['--address', address, '--namespace', namespace, 'content', 'rm', layer.digest])
  t.is(removed.code, 0, removed.stderr)
  t.is((await ctrImages(peers, namespace)).get(image.name)?.digest, image.digest)
  const again = await exec('dash', [script, '--address', address, '--namespace', namespace], env())
  t.is(again.code, 0, again.stderr)
  t.regex(again.stdout, new RegExp(`imported ${image.name.replaceAll('.', '\\.')} `))
  t.regex(again.stdout, new RegExp(`1 imported, ${meta.images.length - 1} already present, 0 missing, 0 pinned`))
  const check = await exec('ctr', ['--address', address, '--namespace', namespace, 'images', 'check'])
  t.regex(check.stdout, new RegExp(`${image.name.replaceAll('.', '\\.')}\\s.*\\scomplete\\s`))
  const third = await exec('dash', [script, '--address', address, '--namespace', namespace], env())
  t.regex(third.stdout, new RegExp(`0 imported, ${meta.images.length} already present`))
})

if (firstRunOnly('a refusal before any import: its message')) test.serial('full disk: a full TMPDIR is refused before anything is imported', async (t) => {
  const peers = needPeers(t, 'containerd')
  if (!peers) return
  const mnt = join(work, 'full')
  await mkdir(mnt)
  const mounted = await exec('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt])
  if (mounted.code !== 0) {
    t.log(`SKIPPED: cannot mount a tmpfs here (${mounted.stderr.trim()})`)
    return t.pass()
  }
  try {
    await exec('dd', ['if=/dev/zero', `of=${join(mnt, 'fill')}`, 'bs=4k'])
    const namespace = ns('full')
    const s = await exec('dash', [script, '--address', peers.containerd!.address, '--namespace', namespace], env({TMPDIR: mnt}))
    t.is(s.code, EXIT.noSpace, s.stderr)
    t.regex(s.stderr, /scratch|space/)
    const l = await runCli(['load', bundle, '--address', peers.containerd!.address, '--namespace', namespace], {env: env({TMPDIR: mnt})})
    t.is(l.code, EXIT.noSpace, l.stderr)
    t.regex(l.stderr, /scratch|space/)
    t.is((await ctrImages(peers, namespace)).size, 0)

    // the runtime's own root on a full disk (read from the config given with --config)
    await rm(join(mnt, 'fill'))
    await exec('dd', ['if=/dev/zero', `of=${join(mnt, 'fill')}`, 'bs=1k', 'count=200'])
    const config = join(work, 'root-on-full.toml')
    await writeFile(config, `version = 2\nroot = "${join(mnt, 'containerd')}"\n`)
    const big = join(work, 'big', 'k8s.tar')
    await mkdir(dirname(big))
    await makeBundle(big, {salt: `big${runId}`, layerSize: 200_000})
    const r = await exec('dash', [scriptFor(big), big, '--address', peers.containerd!.address, '--namespace', namespace, '--config', config], env())
    t.is(r.code, EXIT.noSpace, r.stderr)
    t.regex(r.stderr, /not enough space for .*containerd root/)
    const r2 = await runCli(['load', big, '--address', peers.containerd!.address, '--namespace', namespace, '--config', config], {env: env()})
    t.is(r2.code, EXIT.noSpace, r2.stderr)
    t.regex(r2.stderr, /not enough space for .*containerd root/)
    t.is((await ctrImages(peers, namespace)).size, 0)
  } finally {
    await exec('umount', [mnt])
  }
})

if (firstRunOnly('the wording of a warning')) test.serial('preflight: a containerd sandbox image the bundle lacks gets a warning with the line to change', async (t) => {
  const peers = needPeers(t, 'containerd')
  if (!peers) return
  const v1 = join(work, 'containerd-1.toml')
  await writeFile(v1, 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "k8s.gcr.io/pause:0.8.0"\n')
  const v2 = join(work, 'containerd-2.toml')
  await writeFile(v2, 'version = 3\n[plugins."io.containerd.cri.v1.images".pinned_images]\n  sandbox = "registry.k8s.io/pause:3.8"\n')
  const ok = join(work, 'containerd-ok.toml')
  await writeFile(ok, '[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "registry.k8s.io/pause:3.10"\n')
  const namespace = ns('preflight')
  for (const [file, expected] of [
    [v1, /k8s\.gcr\.io\/pause:0\.8\.0 \(.*containerd-1\.toml line 4\).*\n.*fix: in .*containerd-1\.toml under \[plugins\."io\.containerd\.grpc\.v1\.cri"\] set: sandbox_image = "registry\.k8s\.io\/pause:3\.10"/],
    [v2, /registry\.k8s\.io\/pause:3\.8 \(.*line 3\).*\n.*fix: in .*containerd-2\.toml under \[plugins\."io\.containerd\.cri\.v1\.images"\.pinned_images\] set: sandbox = "registry\.k8s\.io\/pause:3\.10"/],
  ] as const) {
    const s = await exec('dash', [script, '--address', peers.containerd!.address, '--namespace', namespace, '--config', file, '--dry-run'], env())
    t.is(s.code, 0, s.stderr)
    t.regex(s.stderr, expected)
    t.regex(s.stdout, /dry run, nothing changed/)
    const l = await runCli(['load', bundle, '--address', peers.containerd!.address, '--namespace', namespace, '--config', file, '--dry-run'], {env: env()})
    t.is(l.code, 0, l.stderr)
    t.regex(l.stderr, expected)
  }
  const quiet = await exec('dash', [script, '--address', peers.containerd!.address, '--namespace', namespace, '--config', ok, '--dry-run'], env())
  t.notRegex(quiet.stderr, /warning/, 'no warning when the bundle holds the configured sandbox image')
  t.is((await ctrImages(peers, namespace)).size, 0, 'a dry run changes nothing')
})
