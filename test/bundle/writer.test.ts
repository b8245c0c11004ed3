/**
 * The bundle writer without peers: tar format rules (plain ustar, sorted, uid/gid 0, modes, mtime, exactly 1024
 * trailing zero bytes), determinism, SHA256SUMS and the .sha256 side file (checked with the real sha256sum), the
 * cache (a rebuild downloads nothing), failures leave nothing under the final name, missing platforms, and the
 * committed fixtures are what the generator makes.
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, statSync} from 'node:fs'
import {mkdtemp, readFile, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {PassThrough, type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import test, {type ExecutionContext} from 'ava'
import {buildBundle} from '../../src/bundle/build.js'
import {keepsHoles} from '../../src/bundle/tar-fill.js'
import {planBundle} from '../../src/bundle/plan.js'
import {chainIds} from '../../src/bundle/delta.js'
import {verifyBundle} from '../../src/bundle/verify.js'
import {inspectBundle} from '../../src/bundle/inspect.js'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import {BlobStore} from '../../src/store/blob-store.js'
import type {Digest} from '../../src/oci/digest.js'
import {buildImageSet, type ImageSet} from '../images/builder.js'
import {FIXTURE_IMAGES, generateFixtures} from '../fixtures-gen.js'
import {layoutSource} from './layout-source.js'

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
let work: string
let set: ImageSet

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kubeferry-writer-test-'))
  set = await buildImageSet({dir: join(work, 'images'), only: FIXTURE_IMAGES, busybox: false, layerSize: 4096, baseLayerSize: 2048})
})
test.after.always(async () => {
  await rm(work, {recursive: true, force: true})
})

async function build(name: string, cache: string, extra: Partial<Parameters<typeof buildBundle>[0]> = {}) {
  const source = layoutSource(set.images, (d) => set.blobPath(d))
  const output = join(work, name)
  const summary = await buildBundle({
    source,
    store: await BlobStore.open(join(work, cache)),
    requests: FIXTURE_IMAGES.map((reference) => ({reference})),
    platforms: ['linux/amd64', 'linux/arm64'],
    output,
    request: {platforms: ['linux/amd64', 'linux/arm64']},
    fsync: false,
    ...extra,
  })
  return {summary, output, source}
}

/** `base` with each blob's stream passed through `wrap` (to hold it back, gate it or let it never deliver). */
function wrapBlobs(base: ReturnType<typeof layoutSource>, wrap: (upstream: NodeJS.ReadableStream, digest: Digest) => NodeJS.ReadableStream) {
  return {...base, blob: async (...args: Parameters<typeof base.blob>) => wrap(await base.blob(...args), args[1].digest) as Readable}
}

interface Header {
  name: string
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  type: string
  magic: string
}

function headers(tar: Buffer): {list: Header[]; end: number} {
  const list: Header[] = []
  let pos = 0
  for (;;) {
    const block = tar.subarray(pos, pos + 512)
    if (block.every((b) => b === 0)) return {list, end: pos}
    const str = (a: number, n: number) => block.subarray(a, a + n).toString('latin1').replace(/\0.*$/s, '')
    const oct = (a: number, n: number) => Number.parseInt(str(a, n).trim() || '0', 8)
    const h = {name: str(0, 100), mode: oct(100, 8), uid: oct(108, 8), gid: oct(116, 8), size: oct(124, 12), mtime: oct(136, 12), type: String.fromCharCode(block[156]), magic: block.subarray(257, 265).toString('latin1')}
    list.push(h)
    pos += 512 + Math.ceil(h.size / 512) * 512
  }
}

test('tar is plain ustar, sorted, root-owned, fixed modes and mtime, ends with exactly 1024 zero bytes', async (t) => {
  const {output, summary} = await build('format.tar', 'cache-format', {sourceDateEpoch: 1700000000})
  const bytes = await readFile(output)
  const {list, end} = headers(bytes)
  t.is(end + 1024, bytes.length, 'nothing after the two zero blocks')
  t.true(bytes.subarray(end).every((b) => b === 0))
  t.true(list.length > 10)
  t.deepEqual(list.map((h) => h.name), [...list.map((h) => h.name)].sort(), 'entries sorted by name')
  for (const h of list) {
    t.is(h.type, '0', `${h.name} is a regular file (no PAX/dir/link entries)`)
    t.is(h.magic, 'ustar\u000000')
    t.is(h.uid, 0)
    t.is(h.gid, 0)
    t.is(h.mtime, 1700000000)
    t.is(h.mode, h.name === 'kubeferry/install.sh' ? 0o755 : 0o644, h.name)
  }
  for (const name of ['oci-layout', 'index.json', 'manifest.json', 'kubeferry/bundle.json', 'kubeferry/SHA256SUMS', 'kubeferry/install.sh', 'kubeferry/docker/linux-amd64.tar', 'kubeferry/docker/linux-arm64.tar']) {
    t.true(list.some((h) => h.name === name), name)
  }
  t.is(summary.sha256, createHash('sha256').update(bytes).digest('hex'), 'hash computed while writing equals the file')
  t.is(summary.size, bytes.length)
  const meta = JSON.parse(execFileSync('tar', ['-xOf', output, 'kubeferry/bundle.json'], {encoding: 'utf8'})) as BundleMetadata
  t.is(meta.created, new Date(1700000000 * 1000).toISOString())
  // sha256sum checks the side file and, unpacked, every entry of SHA256SUMS
  t.regex(execFileSync('sha256sum', ['-c', basename(`${output}.sha256`)], {cwd: dirname(output), encoding: 'utf8'}), /format\.tar: OK/)
  const unpacked = join(work, 'unpacked')
  execFileSync('mkdir', ['-p', unpacked])
  execFileSync('tar', ['-xf', output, '-C', unpacked])
  const checked = execFileSync('sha256sum', ['-c', 'kubeferry/SHA256SUMS'], {cwd: unpacked, encoding: 'utf8'})
  t.is(checked.trim().split('\n').length, list.length - 1, 'every file but SHA256SUMS is listed')
  t.notRegex(checked, /FAILED/)
  t.true(existsSync(join(work, 'format.install.sh')))
})

test('same input gives a byte-identical bundle; a rebuild with a warm cache downloads nothing', async (t) => {
  const first = await build('a.tar', 'cache-det')
  t.true(first.summary.downloadedBlobs > 0)
  const second = await build('b.tar', 'cache-det')
  t.is(second.summary.downloadedBlobs, 0)
  t.deepEqual(second.source.blobGets, [], 'no blob fetched from the source')
  const cold = await build('c.tar', 'cache-det-cold')
  t.is(first.summary.sha256, second.summary.sha256)
  t.is(first.summary.sha256, cold.summary.sha256)
  t.deepEqual(await readFile(first.output), await readFile(cold.output))
  const result = await verifyBundle(first.output)
  t.deepEqual(result.problems, [])
  t.true(result.ok)
})

test('blobs that land in reverse tar order give the same bundle, and the side checksum is the file\'s', async (t) => {
  const reference = await build('in-order.tar', 'cache-in-order')
  const base = layoutSource(set.images, (d) => set.blobPath(d))
  const plan = await planBundle(base, FIXTURE_IMAGES.map((r) => ({reference: r})), {platforms: ['linux/amd64', 'linux/arm64']})
  const expected = plan.blobs.filter((b) => !b.bytes).map((b) => b.digest as Digest).sort().reverse()
  // Every download is held until all have started, then they are let through one at a time, the last in tar order
  // first: the writer's copiers and its hasher see blobs complete behind their backs.
  const gates = new Map<Digest, () => Promise<void>>()
  const released: Digest[] = []
  const releaseAll = async (): Promise<void> => {
    for (const digest of expected) {
      released.push(digest)
      await gates.get(digest)!()
    }
  }
  const source = wrapBlobs(base, (upstream, digest) => {
    const held = new PassThrough()
    gates.set(digest, () => pipeline(upstream, held).then(() => new Promise((resolve) => setTimeout(resolve, 5))))
    if (gates.size === expected.length) void releaseAll()
    return held
  })
  const {summary, output} = await build('reverse.tar', 'cache-reverse', {source, concurrency: expected.length})
  t.deepEqual(released, expected, 'every blob was held and released in reverse order')
  t.is(summary.downloadedBlobs, expected.length)
  t.is(summary.sha256, reference.summary.sha256)
  t.true((await readFile(output)).equals(await readFile(reference.output)))
  t.regex(execFileSync('sha256sum', ['-c', basename(`${output}.sha256`)], {cwd: dirname(output), encoding: 'utf8'}), /reverse\.tar: OK/)
})

test('interrupted while the copiers wait for downloads: the build fails, nothing is left under the final names', async (t) => {
  const base = layoutSource(set.images, (d) => set.blobPath(d))
  const interrupt = new AbortController()
  let opened = 0
  // The third download never delivers; the interrupt comes once the writer is waiting for it.
  const source = wrapBlobs(base, (upstream) => {
    if (++opened !== 3) return upstream
    setTimeout(() => interrupt.abort(new Error('interrupted (test)')), 200)
    return new PassThrough()
  })
  const output = join(work, 'interrupted.tar')
  const error = await t.throwsAsync(build('interrupted.tar', 'cache-interrupted', {source, platforms: ['linux/amd64'], request: {platforms: ['linux/amd64']}, signal: interrupt.signal}))
  t.regex(error!.message, /interrupted \(test\)/)
  for (const leftover of [output, `${output}.partial`, `${output}.sha256`, join(work, 'interrupted.install.sh')]) t.false(existsSync(leftover), leftover)
  t.deepEqual(await readdir(join(work, 'cache-interrupted', 'tmp')), [], 'no temp file left')
})

/**
 * Build while one blob in the middle of tar order is held back; take a copy of the .partial file once it stopped
 * growing, and the finished bundle.
 */
async function whileHeld(t: ExecutionContext, name: string, concurrency: number) {
  const base = layoutSource(set.images, (d) => set.blobPath(d))
  const plan = await planBundle(base, FIXTURE_IMAGES.map((r) => ({reference: r})), {platforms: ['linux/amd64', 'linux/arm64']})
  const downloaded = plan.blobs.filter((b) => !b.bytes).map((b) => b.digest as Digest).sort()
  const held = downloaded[downloaded.length >> 1]
  let release: (() => void) | undefined
  const source = wrapBlobs(base, (upstream, digest) => {
    if (digest !== held) return upstream
    const gate = new PassThrough()
    release = () => void pipeline(upstream, gate).catch(() => undefined)
    return gate
  })
  const output = join(work, name)
  const building = build(name, `cache-${name}`, {source, concurrency})
  let size = -1
  for (let still = 0; still < 5; ) {
    await new Promise((resolve) => setTimeout(resolve, 40))
    const now = existsSync(`${output}.partial`) ? statSync(`${output}.partial`).size : -1
    still = release && now === size && now > 0 ? still + 1 : 0
    size = now
  }
  const partial = await readFile(`${output}.partial`)
  release!()
  const {summary} = await building
  const bundle = await readFile(output)
  t.is(summary.sha256, createHash('sha256').update(bundle).digest('hex'))
  return {partial, bundle}
}

test('one copier (as on FAT/exFAT, which write any gap out as zeros): what is in the file is always a prefix of the bundle', async (t) => {
  const one = await whileHeld(t, 'one-copier.tar', 1)
  t.true(one.partial.length > 0 && one.partial.length < one.bundle.length)
  t.true(one.partial.equals(one.bundle.subarray(0, one.partial.length)), `the first ${one.partial.length} bytes, no gap`)
  // The same wait with eight copiers: blobs after the held one are written past it, over a gap.
  const eight = await whileHeld(t, 'eight-copiers.tar', 8)
  t.false(eight.partial.equals(eight.bundle.subarray(0, eight.partial.length)), `eight copiers left a gap (${eight.partial.length} bytes written)`)
})

test('filesystems without sparse files are told apart by their statfs type', (t) => {
  for (const [type, name] of [[0x4d44, 'vfat'], [0x2011bab0, 'exfat'], [0x5346544e, 'ntfs'], [0x482b, 'hfsplus'], [0x65735546, 'fuse']] as const) t.false(keepsHoles(type), name)
  for (const [type, name] of [[0xef53, 'ext4'], [0x58465342, 'xfs'], [0x9123683e, 'btrfs'], [0x01021994, 'tmpfs'], [0x6969, 'nfs']] as const) t.true(keepsHoles(type), name)
})

test('shared blobs are stored once and the bundle is at most 1% larger than its unique blobs plus metadata', async (t) => {
  const {summary, output} = await build('shared.tar', 'cache-shared')
  const {list} = headers(await readFile(output))
  const blobEntries = list.filter((h) => h.name.startsWith('blobs/sha256/'))
  t.is(blobEntries.length, summary.uniqueBlobs)
  t.is(new Set(blobEntries.map((h) => h.name)).size, blobEntries.length)
  t.is(blobEntries.reduce((n, h) => n + h.size, 0), summary.blobBytes)
})

test.serial('eight or sixteen downloads at once (create --concurrency 16), each listening for abort as the registry client does, raise no listener-leak warning', async (t) => {
  const warnings: string[] = []
  const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`)
  process.on('warning', onWarning)
  t.teardown(() => void process.off('warning', onWarning))
  const base = layoutSource(set.images, (d) => set.blobPath(d))
  let inFlight = 0
  let most = 0
  const source = {
    ...base,
    blob: async (...args: Parameters<typeof base.blob>) => {
      const signal = args[2]?.signal
      const onAbort = (): void => undefined
      signal?.addEventListener('abort', onAbort) // as RegistryClient.openBlob does, until its stream closes
      most = Math.max(most, ++inFlight)
      await new Promise((resolve) => setTimeout(resolve, 100)) // all of them in flight together
      const stream = await base.blob(...args)
      stream.once('close', () => {
        inFlight--
        signal?.removeEventListener('abort', onAbort)
      })
      return stream
    },
  }
  for (const concurrency of [8, 16]) {
    await build(`listeners-${concurrency}.tar`, `cache-listeners-${concurrency}`, {source, concurrency})
    await new Promise((resolve) => setImmediate(resolve)) // warnings are emitted on the next tick
    t.true(most >= 6, `only ${most} downloads overlapped`)
    t.deepEqual(warnings.filter((w) => /MaxListeners/.test(w)), [], `--concurrency ${concurrency}`)
  }
})

test('a failing download leaves no bundle, no partial bundle, and verified blobs stay cached', async (t) => {
  const plan = await planBundle(layoutSource(set.images, (d) => set.blobPath(d)), FIXTURE_IMAGES.map((reference) => ({reference})), {platforms: ['linux/amd64']})
  const victim = plan.blobs.filter((b) => !b.bytes).at(-1)!.digest as Digest
  const source = layoutSource(set.images, (d) => set.blobPath(d), {failBlob: victim})
  const output = join(work, 'fail.tar')
  const error = await t.throwsAsync(
    buildBundle({source, store: await BlobStore.open(join(work, 'cache-fail')), requests: FIXTURE_IMAGES.map((reference) => ({reference})), platforms: ['linux/amd64'], output, request: {platforms: ['linux/amd64']}, fsync: false}),
  )
  t.regex(error!.message, /connection reset/)
  t.false(existsSync(output))
  t.false(existsSync(`${output}.partial`))
  t.false(existsSync(`${output}.sha256`))
  const cached = await readdir(join(work, 'cache-fail', 'blobs', 'sha256'))
  t.false(cached.includes(victim.slice(7)))
  await onlyResumableLeft(t, join(work, 'cache-fail', 'tmp'))
})

/** The downloads a failure stopped may leave what they had as resumable `<hex>.partial` files (store/partial.ts), nothing else. */
async function onlyResumableLeft(t: ExecutionContext, tmp: string): Promise<void> {
  const names = await readdir(tmp)
  t.deepEqual(names.filter((name) => !/^[0-9a-f]{64}\.partial$/.test(name)), [], `temp files left: ${names.join(' ')}`)
}

test('a platform an image lacks is a clear error naming image and platform; --skip-missing-platforms bundles the rest', async (t) => {
  const source = layoutSource(set.images, (d) => set.blobPath(d))
  const error = await t.throwsAsync(planBundle(source, [{reference: 'registry.k8s.io/pause:3.10'}], {platforms: ['linux/s390x']}))
  t.regex(error!.message, /registry\.k8s\.io\/pause:3\.10 has no image for platform linux\/s390x \(it has: linux\/amd64, linux\/arm64\)/)
  const plan = await planBundle(source, [{reference: 'registry.k8s.io/pause:3.10'}], {platforms: ['linux/amd64', 'linux/s390x'], skipMissingPlatforms: true})
  t.deepEqual(plan.images[0].platforms.map((p) => p.platform), ['linux/amd64'])
  t.true(plan.images[0].sparse)
  t.true(plan.warnings.some((w) => w.includes('linux/s390x')))
})

test('inspect reports images, platforms, roles and sources', async (t) => {
  const source = layoutSource(set.images, (d) => set.blobPath(d))
  const output = join(work, 'roles.tar')
  await buildBundle({
    source,
    store: await BlobStore.open(join(work, 'cache-roles')),
    requests: [
      {reference: 'registry.k8s.io/pause:3.10', role: 'pause', source: 'kubeadm v1.31.6'},
      {reference: 'registry.k8s.io/coredns/coredns:v1.11.3', role: 'coredns', source: 'kubeadm v1.31.6'},
      {reference: 'registry.k8s.io/pause:3.10', role: 'sandbox', source: 'containerd 1.7 default sandbox image'},
    ],
    platforms: ['linux/arm64'],
    output,
    request: {kubernetesVersion: 'v1.31.6', platforms: ['linux/arm64']},
    fsync: false,
  })
  const info = await inspectBundle(output)
  t.deepEqual(info.images.map((i) => i.name), ['registry.k8s.io/pause:3.10', 'registry.k8s.io/coredns/coredns:v1.11.3'])
  t.deepEqual(info.pause, [{name: 'registry.k8s.io/pause:3.10', for: ['kubeadm v1.31.6', 'containerd 1.7 default sandbox image']}])
  t.is(info.dockerPlatform, 'linux/arm64')
  t.true(info.images.every((i) => i.sparse && i.platforms.join() === 'linux/arm64'))
  t.is(info.images[0].digest, set.images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!.digest)
})

test('the committed fixtures are what the generator makes (same entries, same images and blobs)', async (t) => {
  // Compared by content except install.sh (and the checksums over it), which issue 6's renderer may change.
  const out = join(work, 'fixtures')
  const names = await generateFixtures(out)
  const same = (file: string) => ['oci-layout', 'index.json', 'manifest.json']
  for (const name of names.filter((n) => n !== 'traversal.tar')) {
    const committed = join(projectRoot, 'fixtures', 'bundles', name)
    const fresh = join(out, name)
    const list = (f: string) => execFileSync('tar', ['-tf', f], {encoding: 'utf8'})
    t.is(list(committed), list(fresh), `${name}: same entries`)
    for (const entry of same(name)) {
      t.is(execFileSync('tar', ['-xOf', committed, entry], {encoding: 'utf8'}), execFileSync('tar', ['-xOf', fresh, entry], {encoding: 'utf8'}), `${name}: ${entry}`)
    }
    const blobs = list(fresh).split('\n').filter((e) => e.startsWith('blobs/'))
    for (const blob of blobs) {
      const a = createHash('sha256').update(execFileSync('tar', ['-xOf', committed, blob])).digest('hex')
      const b = createHash('sha256').update(execFileSync('tar', ['-xOf', fresh, blob])).digest('hex')
      t.is(a, b, `${name}: ${blob}`)
    }
  }
})

test('blob transfers start while the plan is still being made (a slow last reference does not hold them back)', async (t) => {
  const inner = layoutSource(set.images, (d) => set.blobPath(d))
  const events: string[] = []
  const last = FIXTURE_IMAGES.at(-1)!
  const source: typeof inner = {
    ...inner,
    async manifest(ref, digest) {
      if (!digest && `${ref.registry}/${ref.repository}:${ref.tag}` === last) {
        await new Promise((resolve) => setTimeout(resolve, 300)) // a slow last reference
        events.push('last manifest')
      }
      return inner.manifest(ref, digest)
    },
    async blob(ref, desc, options) {
      events.push('blob')
      return inner.blob(ref, desc, options)
    },
  }
  const output = join(work, 'after-plan.tar')
  await buildBundle({source, store: await BlobStore.open(join(work, 'cache-after-plan')), requests: FIXTURE_IMAGES.map((reference) => ({reference})), platforms: ['linux/amd64'], output, request: {platforms: ['linux/amd64']}, fsync: false})
  t.true(events.indexOf('blob') >= 0 && events.indexOf('blob') < events.indexOf('last manifest'), events.join(', '))
  t.true((await verifyBundle(output)).ok)
})

test('a plan that fails leaves no bundle and no temp file but resumable partials; the blobs fetched meanwhile stay in the cache', async (t) => {
  const inner = layoutSource(set.images, (d) => set.blobPath(d))
  const last = FIXTURE_IMAGES.at(-1)!
  const opened: string[] = []
  const output = join(work, 'plan-fail.tar')
  const cache = join(work, 'cache-plan-fail')
  const inCache = (): string[] => opened.filter((digest) => existsSync(join(cache, 'blobs', 'sha256', digest.slice(7))))
  const source: typeof inner = {
    ...inner,
    async manifest(ref, digest) {
      if (!digest && `${ref.registry}/${ref.repository}:${ref.tag}` === last) {
        // the last reference fails once a blob of the others is in the cache (at most 5 s: under load it takes longer)
        for (let waited = 0; inCache().length === 0 && waited < 5000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20))
        throw new Error('manifest unknown (injected)')
      }
      return inner.manifest(ref, digest)
    },
    async blob(ref, desc, options) {
      opened.push(desc.digest)
      return inner.blob(ref, desc, options)
    },
  }
  const error = await t.throwsAsync(buildBundle({source, store: await BlobStore.open(cache), requests: FIXTURE_IMAGES.map((reference) => ({reference})), platforms: ['linux/amd64'], output, request: {platforms: ['linux/amd64']}, fsync: false}))
  t.regex(error!.message, /manifest unknown \(injected\)/)
  t.true(opened.length > 0, 'the other images were being fetched')
  t.false(existsSync(output))
  t.false(existsSync(`${output}.partial`))
  await onlyResumableLeft(t, join(cache, 'tmp'))
  t.true(inCache().length > 0, 'blobs fetched before the failure are kept, verified, for the next run')
})

test('a delta against an image store (layers known by ChainID) fetches none of the layers it relies on', async (t) => {
  const inner = layoutSource(set.images, (d) => set.blobPath(d))
  const plan = await planBundle(inner, FIXTURE_IMAGES.map((reference) => ({reference})), {platforms: ['linux/amd64']})
  // the base: a docker-like inventory holding every layer of the first image, by ChainID only
  const held = plan.images[0].platforms[0]
  const config = JSON.parse(await readFile(set.blobPath(held.config.digest), 'utf8')) as {rootfs: {diff_ids: string[]}}
  const base = {kind: 'runtime-inventory' as const, name: 'docker', for: ['load' as const], blobs: new Set<string>(), chains: new Set(chainIds(config.rootfs.diff_ids))}
  const fetched: string[] = []
  const source: typeof inner = {...inner, blob: async (ref, desc, options) => (fetched.push(desc.digest), inner.blob(ref, desc, options))}
  const output = join(work, 'chain-delta.tar')
  const summary = await buildBundle({source, store: await BlobStore.open(join(work, 'cache-chain-delta')), requests: FIXTURE_IMAGES.map((reference) => ({reference})), platforms: ['linux/amd64'], output, request: {platforms: ['linux/amd64']}, fsync: false, base})
  const meta = JSON.parse(execFileSync('tar', ['-xOf', output, 'kubeferry/bundle.json'], {encoding: 'utf8'})) as BundleMetadata
  const relied = (meta.delta?.relies ?? []).map((b) => b.digest as string)
  t.true(relied.length > 0)
  t.is(summary.delta?.reliedBlobs, relied.length)
  t.true(relied.every((digest) => held.layers.some((l) => l.digest === digest)), 'it relies on the held image\'s layers only')
  t.deepEqual(fetched.filter((digest) => relied.includes(digest)), [], 'a relied-on layer was downloaded')
  t.true(fetched.length > 0)
})

test('an upstream manifest whose descriptors carry a non-sha256 or path-like digest is refused before anything is written', async (t) => {
  const inner = layoutSource(set.images, (d) => set.blobPath(d))
  const image = set.images.find((i) => i.name === 'registry.k8s.io/pause:3.10')!
  const hostile = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:../../../../tmp/kf-evil', size: 2},
    layers: [],
  }
  const bytes = Buffer.from(JSON.stringify(hostile))
  const {createHash: hash} = await import('node:crypto')
  const digest = `sha256:${hash('sha256').update(bytes).digest('hex')}` as Digest
  const source: typeof inner = {...inner, manifest: async () => ({bytes, digest, mediaType: hostile.mediaType})}
  const output = join(work, 'hostile-upstream.tar')
  const error = await t.throwsAsync(buildBundle({source, store: await BlobStore.open(join(work, 'cache-hostile')), requests: [{reference: image.name}], platforms: ['linux/amd64'], output, request: {platforms: ['linux/amd64']}, fsync: false}))
  t.regex(error!.message, /invalid digest or size/)
  t.false(existsSync(output))
})
