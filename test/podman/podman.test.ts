/**
 * The bundle with the REAL podman 4.3 (Debian 12) and skopeo, each test in its own containers-storage (vfs, own
 * graphroot/runroot, see store.ts), nothing global touched, no network:
 * - `podman load -i BUNDLE`: with more than one index.json entry podman 4.3 takes the docker-archive path
 *   (manifest.json), so images are named by RepoTags and carry the docker-archive manifest, not the upstream one;
 *   RepoTags are fully qualified (a short `busybox:1.36` would become `localhost/busybox:1.36`). With exactly one
 *   entry it takes the OCI path: the full name and the upstream digests.
 * - `skopeo copy oci-archive:BUNDLE:REF containers-storage:[vfs@ROOT+RUNROOT]REF` keeps the upstream digests.
 * - install.sh `--runtime podman` / `--runtime cri-o` and `kubeferry load` the same, with skopeo and without it
 *   (podman pull), and CRI-O with skopeo but no podman: every name with the host platform's image id and the
 *   upstream index + platform manifest digests, and a rerun imports nothing.
 * The bundle comes from `kubeferry create` against the open registry peer (canonical names through --mirror).
 */
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import test, {type ExecutionContext} from 'ava'
import {hostPlatform, parsePlatform, platformMatches} from '../../src/oci/platform.js'
import {which} from '../../src/runtime/exec.js'
import {loadPeers, missingPeer, type Peers, type TestImage} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {exec, makeStore, pathWithout, type PodmanImage} from './store.js'

const PLATFORMS = ['linux/amd64', 'linux/arm64']
const SMALL = ['registry.k8s.io/pause:3.10', 'registry.k8s.io/coredns/coredns:v1.11.3', 'docker.io/library/busybox:1.36']
const inCI = process.env.CI === 'true' || process.env.CI === '1'

let work = ''
let full = '' // every test image, 2 platforms
let small = '' // SMALL only, for the variants
let single = '' // one image: podman load takes the OCI path
let noSkopeo = ''
let noPodman = ''
let setupError: string | undefined

async function create(peers: Peers, output: string, names: string[]): Promise<void> {
  const url = peers.registries.open.url
  await mkdir(dirname(output), {recursive: true})
  const args = ['create', '-o', output, '--cache-dir', join(dirname(output), 'cache'), '--json', '--no-progress', ...names.flatMap((n) => ['--image', n]),
    ...PLATFORMS.flatMap((p) => ['--platform', p]), '--mirror', `registry.k8s.io=${url}`, '--mirror', `docker.io=${url}`]
  const result = await runCli(args)
  if (result.code !== 0) throw new Error(`create ${output} failed (${result.code}): ${result.stderr}`)
}

const missing = (): string | undefined => (which('podman') ? missingPeer(['registries', 'skopeo']) : 'podman is not installed (apt-get install podman)')

test.before(async () => {
  if (missing()) return
  const peers = loadPeers()!
  work = await mkdtemp(join(tmpdir(), 'kf-podman-test-'))
  try {
    full = join(work, 'full', 'k8s.tar')
    small = join(work, 'small', 'k8s.tar')
    single = join(work, 'single', 'k8s.tar')
    ;[noSkopeo, noPodman] = await Promise.all([
      pathWithout(work, 'skopeo'),
      pathWithout(work, 'podman'),
      create(peers, full, peers.images.map((i) => i.name)),
      create(peers, small, SMALL),
      create(peers, single, ['docker.io/library/busybox:1.36']),
    ])
  } catch (error) {
    setupError = (error as Error).message
  }
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

/** A test that needs podman (checked with `which`: the harness does not list it) and the registry + skopeo peers. */
function podmanTest(title: string, fn: (t: ExecutionContext, peers: Peers) => Promise<void>): void {
  const why = missing()
  if (!why) {
    test(title, async (t) => {
      if (setupError) return t.fail(`setup failed: ${setupError}`)
      await fn(t, loadPeers()!)
    })
  } else if (inCI) {
    test(title, (t) => t.fail(`needs podman, registries, skopeo: ${why}`))
  } else {
    test.skip(`${title} [skipped: ${why}]`, () => undefined)
  }
}

const host = hostPlatform()
function hostImage(image: TestImage) {
  const p = image.platforms.find((candidate) => platformMatches(host, parsePlatform(candidate.platform)))
  if (!p) throw new Error(`${image.name} has no ${host.os}/${host.architecture} image`)
  return p
}
const repository = (name: string): string => name.replace(/[:@][^/]*$/, '')
const hex = (digest: string): string => digest.replace(/^sha256:/, '')

/**
 * Every one of `images` is in the store under its name, with the host platform's image id (its config digest), and
 * (upstream) podman records the registry's index digest and platform manifest digest; nothing else is named.
 */
function expectStore(t: ExecutionContext, rows: PodmanImage[], images: TestImage[]): void {
  const byName = new Map<string, PodmanImage>()
  for (const row of rows) for (const name of row.Names ?? []) byName.set(name, row)
  t.deepEqual([...byName.keys()].sort(), images.map((i) => i.name).sort(), 'exactly the bundle names, no leftovers (e.g. localhost/kubeferry-oci)')
  for (const image of images) {
    const row = byName.get(image.name)
    const platform = hostImage(image)
    t.is(row?.Id, hex(platform.config), `${image.name}: image id = upstream ${host.architecture} config digest`)
    t.is(row?.Digest, image.digest, `${image.name}: digest = upstream index digest`)
    const repo = repository(image.name)
    t.true(row?.RepoDigests?.includes(`${repo}@${image.digest}`), `${image.name}: RepoDigests has ${repo}@<index digest>: ${row?.RepoDigests?.join(' ')}`)
    t.true(row?.RepoDigests?.includes(`${repo}@${platform.digest}`), `${image.name}: RepoDigests has ${repo}@<platform manifest digest>`)
  }
}

const selected = (peers: Peers, names?: string[]): TestImage[] => (names ? peers.images.filter((i) => names.includes(i.name)) : peers.images)

podmanTest('podman load -i BUNDLE names every RepoTag (docker-archive path), host-platform image ids', async (t, peers) => {
  const store = await makeStore(work, 'load')
  const r = await store.podman('load', '-i', full)
  t.is(r.code, 0, r.stderr)
  const loaded = r.stdout.split('\n').filter((l) => l.startsWith('Loaded image: ')).map((l) => l.slice('Loaded image: '.length))
  t.log(`podman load: ${loaded.join(', ')}`)
  const manifest = JSON.parse((await exec('tar', ['-xOf', full, 'manifest.json'], process.env)).stdout) as Array<{RepoTags: string[]; Config: string}>
  // podman qualifies an unqualified RepoTag with localhost/ (its own short-name rule), docker with docker.io/library/.
  const podmanName = (tag: string): string => {
    const first = tag.split('/')[0]
    return tag.includes('/') && (/[.:]/.test(first) || first === 'localhost') ? tag : `localhost/${tag}`
  }
  const expected = manifest.flatMap((e) => e.RepoTags.map(podmanName)).sort()
  t.is(expected.length, peers.images.length)
  t.deepEqual([...loaded].sort(), expected, 'every RepoTag of manifest.json is listed')
  t.true(loaded.includes('docker.io/library/busybox:1.36'), 'docker.io/library/busybox:1.36 keeps its name (RepoTags are fully qualified)')

  const rows = await store.images()
  for (const image of peers.images) {
    const name = image.name
    const row = rows.find((candidate) => candidate.Names?.includes(name))
    t.is(row?.Id, hex(hostImage(image).config), `${name}: image id = upstream config digest`)
    t.log(`${name}: podman load digest ${row?.Digest} (upstream index ${image.digest}, platform ${hostImage(image).digest})`)
  }
})

podmanTest('podman load -i BUNDLE of a one-image bundle takes the OCI path: full name, upstream index digest', async (t, peers) => {
  const store = await makeStore(work, 'load-single')
  const r = await store.podman('load', '-i', single)
  t.is(r.code, 0, r.stderr)
  t.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('Loaded image: ')), ['Loaded image: docker.io/library/busybox:1.36'])
  expectStore(t, await store.images(), selected(peers, ['docker.io/library/busybox:1.36']))
})

podmanTest('skopeo copy oci-archive:BUNDLE:REF containers-storage:[vfs@…]REF keeps the upstream digests', async (t, peers) => {
  const store = await makeStore(work, 'skopeo')
  for (const image of peers.images) {
    const r = await exec(peers.tools.skopeo, ['copy', '--quiet', '--override-os', host.os, '--override-arch', host.architecture, `oci-archive:${full}:${image.name}`, store.destination(image.name)], store.env())
    t.is(r.code, 0, `${image.name}: ${r.stderr}`)
  }
  expectStore(t, await store.images(), peers.images)
  // skopeo reads back the platform manifest: its digest is the upstream one
  const pause = peers.images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!
  const raw = await exec(peers.tools.skopeo, ['inspect', '--raw', store.destination(pause.name)], store.env())
  t.is(raw.code, 0, raw.stderr)
  t.is(createHash('sha256').update(raw.stdout).digest('hex'), hex(hostImage(pause).digest))
})

const summary = (out: string): string => out.split('\n').find((l) => l.startsWith('summary: ')) ?? `(no summary line in: ${out})`

interface Variant {
  title: string
  runtime: 'podman' | 'cri-o'
  via: 'install.sh' | 'load'
  /** PATH without this tool */
  without?: 'skopeo' | 'podman'
  names?: string[]
}

const variants: Variant[] = [
  {title: 'install.sh --runtime podman (skopeo copy)', runtime: 'podman', via: 'install.sh'},
  {title: 'kubeferry load --runtime podman (skopeo copy)', runtime: 'podman', via: 'load', names: SMALL},
  {title: 'install.sh --runtime podman without skopeo (podman pull)', runtime: 'podman', via: 'install.sh', without: 'skopeo', names: SMALL},
  {title: 'kubeferry load --runtime podman without skopeo (podman pull)', runtime: 'podman', via: 'load', without: 'skopeo', names: SMALL},
  {title: 'install.sh --runtime cri-o with skopeo only', runtime: 'cri-o', via: 'install.sh', without: 'podman', names: SMALL},
  {title: 'install.sh --runtime cri-o with podman only', runtime: 'cri-o', via: 'install.sh', without: 'skopeo', names: SMALL},
  {title: 'kubeferry load --runtime cri-o with podman only', runtime: 'cri-o', via: 'load', without: 'skopeo', names: SMALL},
]

for (const v of variants) {
  podmanTest(`${v.title}: every name, image id and upstream digests; a rerun imports nothing`, async (t, peers) => {
    const store = await makeStore(work, `${v.via}-${v.runtime}-${v.without ?? 'all'}`.replace('.', ''))
    const bundle = v.names ? small : full
    const images = selected(peers, v.names)
    const env = store.env(v.without === 'skopeo' ? noSkopeo : v.without === 'podman' ? noPodman : undefined)
    const runOnce = () =>
      v.via === 'install.sh'
        ? exec('dash', [bundle.replace(/\.tar$/, '.install.sh'), '--runtime', v.runtime], env)
        : runCli(['load', bundle, '--runtime', v.runtime, '--json'], {env})
    const n = images.length
    const first = await runOnce()
    t.is(first.code, 0, first.stdout + first.stderr)
    const second = await runOnce()
    t.is(second.code, 0, second.stdout + second.stderr)
    if (v.via === 'install.sh') {
      t.is(summary(first.stdout), `summary: ${host.os}/${host.architecture} into ${v.runtime}: ${n} images, ${n} imported, 0 already present, 0 missing, 0 pinned`)
      t.is(summary(second.stdout), `summary: ${host.os}/${host.architecture} into ${v.runtime}: ${n} images, 0 imported, ${n} already present, 0 missing, 0 pinned`)
      t.is(second.stderr, '', 'the rerun is quiet')
    } else {
      const a = JSON.parse(first.stdout) as {imported: string[]; present: string[]; missing: string[]; runtime: string}
      const b = JSON.parse(second.stdout) as typeof a
      t.is(a.runtime, v.runtime)
      t.deepEqual([...a.imported].sort(), images.map((i) => i.name).sort())
      t.deepEqual(a.missing, [])
      t.deepEqual(b.imported, [])
      t.deepEqual([...b.present].sort(), images.map((i) => i.name).sort())
    }
    expectStore(t, await store.images(), images)
  })
}
