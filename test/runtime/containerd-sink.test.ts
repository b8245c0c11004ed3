/**
 * The containerd sink takes ONE image from ANY source and imports it into the real containerd peer through
 * `ctr images import --platform P -`: registry → containerd (RegistrySource over the shared open registry), bundle →
 * containerd (BundleSource of fixtures/bundles/good.tar), and a source whose blob does not verify (a wrapper flipping
 * one byte), which must leave containerd without the image. Each test uses a namespace of its own, removed after.
 */
import {join} from 'node:path'
import {Transform, type Readable} from 'node:stream'
import test, {type ExecutionContext} from 'ava'
import {needPeers, type Peers} from '../harness/peers.js'
import {projectRoot} from '../helpers/cli.js'
import {seedClient} from '../images/seed.js'
import {run} from '../push/helpers.js'
import {BundleReader} from '../../src/bundle/reader.js'
import {BundleSource} from '../../src/bundle/source.js'
import type {Digest} from '../../src/oci/digest.js'
import {isKubeferryError} from '../../src/oci/errors.js'
import {formatReference, parseReference, type Reference} from '../../src/oci/reference.js'
import {walkSourceOf, type ImageSource, type SourcedImage} from '../../src/oci/source.js'
import {treeNodes, walkFromRaw, walkTree} from '../../src/oci/walk.js'
import {RegistrySource} from '../../src/registry/source.js'
import {parseImageList} from '../../src/runtime/containerd.js'
import {ContainerdSink, layoutParts} from '../../src/runtime/containerd-sink.js'

const PLATFORM = 'linux/amd64'
const GOOD = join(projectRoot, 'fixtures', 'bundles', 'good.tar')
let namespaces = 0

/** ctr on the shared containerd in a namespace of this test's own, removed (images, content, namespace) at teardown. */
function ownNamespace(t: ExecutionContext, peers: Peers) {
  const address = peers.containerd!.address
  const namespace = `kf-rtsink-${process.pid}-${++namespaces}`
  const ctr = (...args: string[]) => run(peers.tools.ctr, ['--address', address, '--namespace', namespace, ...args])
  t.teardown(async () => {
    const names = (await ctr('images', 'ls', '-q')).stdout.trim().split('\n').filter(Boolean)
    if (names.length) await ctr('images', 'rm', '--sync', ...names)
    const content = (await ctr('content', 'ls', '-q')).stdout.trim().split('\n').filter(Boolean)
    if (content.length) await ctr('content', 'rm', ...content)
    await run(peers.tools.ctr, ['--address', address, 'namespaces', 'rm', namespace])
  })
  return {
    namespace,
    sink: new ContainerdSink({ctr: [peers.tools.ctr], address, namespace, platform: PLATFORM}),
    images: async () => parseImageList((await ctr('images', 'ls')).stdout),
    content: async () => new Set((await ctr('content', 'ls', '-q')).stdout.trim().split('\n').filter(Boolean)),
  }
}

async function fromRegistry(peers: Peers, repository: string): Promise<{source: RegistrySource; image: SourcedImage}> {
  const source = new RegistrySource(seedClient(peers.registries.open))
  const tag = peers.images.find((i) => i.repository === repository)!.tag
  const ref: Reference = {registry: peers.registries.open.host, repository, tag}
  const name = formatReference(ref)
  const tree = await walkFromRaw(walkSourceOf(source, ref), await source.manifest(ref), {what: name})
  return {source, image: {name, ref, tree: tree!}}
}

/** The image is listed under its name at `digest`; the platform's manifest, config and layers are in containerd's content, no other platform's. */
async function assertImported(t: ExecutionContext, ns: ReturnType<typeof ownNamespace>, image: SourcedImage, digest: string) {
  t.is((await ns.images()).get(image.name)?.digest, digest, `${image.name} in ctr images ls`)
  const content = await ns.content()
  const platforms = [...treeNodes(image.tree)].filter((n) => n.kind === 'manifest')
  const chosen = platforms.filter((n) => n.platform === PLATFORM)
  t.is(chosen.length, 1)
  for (const d of [chosen[0].raw.digest, ...chosen[0].blobs.map((b) => b.digest)]) t.true(content.has(d), `${d} of ${PLATFORM} in ctr content ls`)
  const chosenBlobs = new Set(chosen[0].blobs.map((b) => b.digest))
  for (const other of platforms.filter((n) => n.platform !== PLATFORM)) {
    t.false(content.has(other.raw.digest), `${other.platform} manifest not imported`)
    for (const b of other.blobs) if (!chosenBlobs.has(b.digest)) t.false(content.has(b.digest), `${b.digest} of ${other.platform} not imported`)
  }
}

test('registry → containerd: pause:3.10 from the open registry, named at its upstream index digest, its amd64 layers in content', async (t) => {
  const peers = needPeers(t, 'containerd', 'registries')
  if (!peers) return
  const ns = ownNamespace(t, peers)
  const {source, image} = await fromRegistry(peers, 'pause')
  const expected = peers.images.find((i) => i.repository === 'pause' && i.tag === image.ref.tag)!
  const result = await ns.sink.write(image, source)
  t.is(result.digest, expected.digest as Digest)
  t.is(result.name, image.name)
  const amd64 = expected.platforms.find((p) => p.platform === PLATFORM)!
  t.is(result.blobs, amd64.layers.length + 1)
  t.is(result.bytes, amd64.configSize + amd64.layers.reduce((sum, l) => sum + l.size, 0))
  await assertImported(t, ns, image, expected.digest)
})

test('bundle → containerd: every image of good.tar through a BundleSource, at the digests its index.json names', async (t) => {
  const peers = needPeers(t, 'containerd')
  if (!peers) return
  const ns = ownNamespace(t, peers)
  const source = new BundleSource(await BundleReader.open(GOOD))
  const named = await source.images()
  t.true(named.length >= 2)
  for (const {name, desc} of named) {
    const tree = await walkTree(source.walkSource(), desc, {what: name})
    const image = {name, ref: parseReference(name), tree: tree!}
    const result = await ns.sink.write(image, source)
    t.is(result.digest, desc.digest)
    await assertImported(t, ns, image, desc.digest)
  }
})

/** The source's bytes of `digest` with one byte flipped, after the source verified them. */
function flipping(source: ImageSource, digest: string): ImageSource {
  return {
    label: `flipping(${source.label})`,
    manifest: (ref, d) => source.manifest(ref, d),
    async blob(ref, desc, options) {
      const stream = await source.blob(ref, desc, options)
      if (desc.digest !== digest) return stream
      let first = true
      const flip = new Transform({
        transform(chunk: Buffer, _enc, done) {
          if (first) {
            first = false
            chunk = Buffer.from(chunk)
            chunk[0] ^= 0xff
          }
          done(null, chunk)
        },
      })
      return (stream as Readable).pipe(flip)
    },
  }
}

test('a blob that does not verify: write() rejects naming the image and the blob, containerd ends without the image', async (t) => {
  const peers = needPeers(t, 'containerd', 'registries')
  if (!peers) return
  const ns = ownNamespace(t, peers)
  const {source, image} = await fromRegistry(peers, 'pause')
  // The big layer (1 MiB, many chunks) of the amd64 manifest: the stream is cut in the middle of the tar.
  const bad = layoutParts(image, PLATFORM).blobs.reduce((a, b) => (b.size > a.size ? b : a))
  t.true(bad.size > 1 << 19)
  const error = await t.throwsAsync(ns.sink.write(image, flipping(source, bad.digest)))
  t.true(isKubeferryError(error) && error.code === 'DIGEST_MISMATCH', String(error))
  t.true(error!.message.includes(image.name) && error!.message.includes(bad.digest), error!.message)
  t.false((await ns.images()).has(image.name), 'no image recorded')
  t.false((await ns.content()).has(bad.digest), 'the bad blob was not committed')
  // Right after, the same sink and namespace import the image from the honest source (no partial ingest of the bad
  // bytes is resumed: the sink waits for containerd to drop it).
  await ns.sink.write(image, source)
  await assertImported(t, ns, image, image.tree.raw.digest)
})

test('a platform the image does not have is refused before ctr runs, naming the image and the platforms it holds', async (t) => {
  const source = new BundleSource(await BundleReader.open(GOOD))
  const [{name, desc}] = await source.images()
  const image = {name, ref: parseReference(name), tree: (await walkTree(source.walkSource(), desc, {what: name}))!}
  const error = t.throws(() => layoutParts(image, 'linux/s390x'))
  t.true(error!.message.includes(name) && error!.message.includes('linux/s390x') && error!.message.includes(PLATFORM), error!.message)
})
