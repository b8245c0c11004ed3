/** The blob cache as an ImageSource: manifests by digest, verified blobs, an image tree walked out of the cache. */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import test from 'ava'
import {sha256Digest, type Digest} from '../../src/oci/digest.js'
import {isKubeferryError} from '../../src/oci/errors.js'
import {parseReference} from '../../src/oci/reference.js'
import {walkSourceOf} from '../../src/oci/source.js'
import {treeNodes, walkTree} from '../../src/oci/walk.js'
import {BlobStore} from '../../src/store/blob-store.js'
import {StoreSource} from '../../src/store/source.js'

const ref = parseReference('registry.k8s.io/pause:3.10')
const OCI = {index: 'application/vnd.oci.image.index.v1+json', manifest: 'application/vnd.oci.image.manifest.v1+json', config: 'application/vnd.oci.image.config.v1+json', layer: 'application/vnd.oci.image.layer.v1.tar+gzip'}

const desc = (bytes: Buffer, mediaType: string, extra: object = {}) => ({mediaType, digest: sha256Digest(bytes), size: bytes.length, ...extra})
const json = (value: unknown) => Buffer.from(JSON.stringify(value))

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** A store holding a two-platform index of which one platform's manifest (and blobs) were kept. */
async function cachedImage(t: {teardown(fn: () => Promise<void>): void}) {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-store-source-'))
  t.teardown(() => rm(dir, {recursive: true, force: true}))
  const store = await BlobStore.open(dir)
  const layer = Buffer.alloc(300_000, 7)
  const config = json({architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: []}})
  const manifest = json({schemaVersion: 2, mediaType: OCI.manifest, config: desc(config, OCI.config), layers: [desc(layer, OCI.layer)]})
  const absent = json({schemaVersion: 2, mediaType: OCI.manifest, config: desc(config, OCI.config), layers: []})
  const index = json({
    schemaVersion: 2,
    mediaType: OCI.index,
    manifests: [desc(manifest, OCI.manifest, {platform: {os: 'linux', architecture: 'amd64'}}), desc(absent, OCI.manifest, {platform: {os: 'linux', architecture: 'arm64'}})],
  })
  for (const bytes of [index, manifest]) await store.putBytes({digest: sha256Digest(bytes), size: bytes.length}, bytes)
  for (const bytes of [config, layer]) await store.ingest({digest: sha256Digest(bytes), size: bytes.length}, async () => Readable.from([bytes]))
  return {dir, store, source: new StoreSource(store), layer, config, manifest, index, absent}
}

test('manifests by digest as stored, undefined for what the cache lacks or a name alone', async (t) => {
  const {source, index, absent} = await cachedImage(t)
  const raw = await source.manifest(ref, sha256Digest(index))
  t.deepEqual(raw?.bytes, index)
  t.is(raw?.mediaType, OCI.index)
  t.is(await source.manifest(ref, sha256Digest(absent)), undefined)
  t.is(await source.manifest(ref), undefined) // a tag: the cache knows no names
  t.deepEqual((await source.manifest({...ref, digest: sha256Digest(index)}))?.bytes, index)
})

test('a damaged manifest is reported absent and dropped from the cache', async (t) => {
  const {store, source, manifest} = await cachedImage(t)
  const digest = sha256Digest(manifest)
  await writeFile(store.pathOf(digest), Buffer.from(manifest.toString().replace('layers', 'layerz')))
  t.is(await source.manifest(ref, digest), undefined)
  t.is(source.blobSize(digest), undefined)
})

test('blobs: whole and verified, from an offset, and a corrupt file fails its digest', async (t) => {
  const {store, source, layer} = await cachedImage(t)
  const d = {digest: sha256Digest(layer), size: layer.length}
  let seen = 0
  t.deepEqual(await drain(await source.blob(ref, d, {onBytes: (n) => (seen += n)})), layer)
  t.is(seen, layer.length)
  t.deepEqual(await drain(await source.blob(ref, d, {offset: 1000})), layer.subarray(1000))
  t.is(source.blobSize(d.digest), layer.length)

  const missing = {digest: sha256Digest('nothing') as Digest, size: 7}
  const notThere = await t.throwsAsync(source.blob(ref, missing))
  t.true(isKubeferryError(notThere) && notThere.code === 'NOT_FOUND' && notThere.message.includes(missing.digest))

  const damaged = Buffer.from(layer)
  damaged[123] ^= 1
  await writeFile(store.pathOf(d.digest), damaged)
  const error = await t.throwsAsync(drain(await source.blob(ref, d)))
  t.true(isKubeferryError(error) && error.code === 'DIGEST_MISMATCH', String(error))
})

test('the walker reads an image tree out of the cache: held platforms as children, the rest absent', async (t) => {
  const {source, index, manifest, config, layer, absent} = await cachedImage(t)
  const tree = await walkTree(walkSourceOf(source, ref), desc(index, OCI.index), {what: 'pause'})
  t.is(tree?.kind, 'index')
  t.deepEqual(tree?.children.map((c) => c.raw.digest), [sha256Digest(manifest)])
  t.deepEqual(tree?.absent.map((d) => d.digest), [sha256Digest(absent)])
  const leaves = [...treeNodes(tree!)].flatMap((n) => n.blobs.map((b) => b.digest))
  t.deepEqual(leaves, [sha256Digest(config), sha256Digest(layer)])
})
