/**
 * The registry sink takes images from ANY source, not only a bundle: a registry → registry copy (RegistrySource reading
 * the shared test registry) and a cache → registry copy (StoreSource), each into a repository of its own on the real
 * registry, checked with skopeo (digests of the index and of every platform manifest) and by a rerun that finds
 * every name present.
 */
import {createHash} from 'node:crypto'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {ExecutionContext} from 'ava'
import {peerTest, type Peers} from '../harness/peers.js'
import {randomName, run} from '../push/helpers.js'
import {seedClient} from '../images/seed.js'
import type {Digest} from '../../src/oci/digest.js'
import {formatReference, type Reference} from '../../src/oci/reference.js'
import {walkSourceOf, type ImageSource, type SourcedImage} from '../../src/oci/source.js'
import {treeNodes, walkFromRaw, walkTree} from '../../src/oci/walk.js'
import {RegistrySink} from '../../src/registry/sink.js'
import {RegistrySource} from '../../src/registry/source.js'
import type {PushEvent} from '../../src/registry/push.js'
import {BlobStore} from '../../src/store/blob-store.js'
import {StoreSource} from '../../src/store/source.js'

/** A Docker manifest list, an OCI index, and CoreDNS (two destination names: the kubeadm alias). */
const PICKED = ['kube-apiserver', 'kube-controller-manager', 'coredns/coredns']

async function skopeoDigest(ref: string): Promise<string> {
  const r = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])
  if (r.code !== 0) throw new Error(`skopeo inspect ${ref}: ${r.stderr}`)
  return `sha256:${createHash('sha256').update(r.stdout).digest('hex')}`
}

function picked(peers: Peers) {
  const host = peers.registries.open.host
  return PICKED.map((repository) => {
    const image = peers.images.find((i) => i.repository === repository)!
    const ref: Reference = {registry: host, repository, tag: image.tag}
    return {image, ref, name: formatReference(ref)}
  })
}

/** Every destination name of each image points at the source's digest, and so does every platform manifest. */
async function assertCopied(t: ExecutionContext, peers: Peers, prefix: string, images: ReturnType<typeof picked>): Promise<void> {
  const host = peers.registries.open.host
  for (const {image} of images) {
    const names = [`${prefix}/${image.repository}`, ...(image.repository === 'coredns/coredns' ? [`${prefix}/coredns`] : [])]
    for (const repo of names) {
      t.is(await skopeoDigest(`${host}/${repo}:${image.tag}`), image.digest, `${repo}:${image.tag}`)
      for (const p of image.platforms) t.is(await skopeoDigest(`${host}/${repo}@${p.digest}`), p.digest, `${repo} ${p.platform}`)
    }
  }
}

async function copyWith(source: ImageSource, images: SourcedImage[], peers: Peers, prefix: string) {
  const client = seedClient(peers.registries.open)
  const events: PushEvent[] = []
  const sink = new RegistrySink({registry: client, destination: {registry: peers.registries.open.host, prefix}, onEvent: (e) => events.push(e)})
  const results = await Promise.all(images.map((image) => sink.write(image, source)))
  return {sink, results, events}
}

peerTest('registry → registry: the sink takes images from a RegistrySource; skopeo sees the same digests; a rerun finds them present', ['registries', 'skopeo'], async (t, peers) => {
  const client = seedClient(peers.registries.open)
  const source = new RegistrySource(client)
  const images = picked(peers)
  const sourced: SourcedImage[] = []
  for (const {ref, name} of images) {
    const tree = await walkFromRaw(walkSourceOf(source, ref), await source.manifest(ref), {what: name})
    sourced.push({name, ref, tree: tree!})
  }
  const prefix = randomName('kf-sink-r2r')
  const first = await copyWith(source, sourced, peers, prefix)
  t.deepEqual(
    first.results.map((r) => r.map((x) => x.status)),
    [['pushed'], ['pushed'], ['pushed', 'pushed']],
  )
  t.deepEqual(
    first.results.map((r) => r[0].digest),
    images.map((i) => i.image.digest as Digest),
  )
  // Bytes came through the source's blob streams; layers shared by images were mounted, not sent again.
  t.true(first.sink.counts.blobs.uploaded > 0 && first.sink.counts.blobs.bytesUploaded > 0, JSON.stringify(first.sink.counts))
  t.true(first.sink.counts.blobs.mounted > 0, JSON.stringify(first.sink.counts))
  t.is(first.events.filter((e) => e.type === 'image-done').length, images.length)
  await assertCopied(t, peers, prefix, images)

  const again = await copyWith(source, sourced, peers, prefix)
  t.deepEqual(
    again.results.flat().map((r) => r.status),
    ['present', 'present', 'present', 'present'],
  )
  t.is(again.sink.counts.blobs.uploaded + again.sink.counts.manifests.pushed, 0)
})

peerTest('cache → registry: the sink takes images from the blob cache (StoreSource), walked from their root digests', ['registries', 'skopeo'], async (t, peers) => {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-sink-cache-'))
  t.teardown(() => rm(dir, {recursive: true, force: true}))
  const store = await BlobStore.open(dir)
  const registry = new RegistrySource(seedClient(peers.registries.open))
  const images = picked(peers)
  // Fill the cache from the registry: every manifest and blob of each tree.
  for (const {ref, name} of images) {
    const tree = (await walkFromRaw(walkSourceOf(registry, ref), await registry.manifest(ref), {what: name}))!
    for (const node of treeNodes(tree)) {
      await store.putBytes({digest: node.raw.digest, size: node.raw.bytes.length}, node.raw.bytes)
      for (const blob of node.blobs) await store.ingest(blob, () => registry.blob(ref, blob))
    }
  }
  const source = new StoreSource(store)
  const sourced: SourcedImage[] = []
  for (const {image, ref, name} of images) {
    const tree = await walkTree(walkSourceOf(source, ref), {digest: image.digest as Digest, size: image.size, mediaType: image.mediaType}, {what: name})
    sourced.push({name, ref, tree: tree!})
  }
  const prefix = randomName('kf-sink-cache')
  const copied = await copyWith(source, sourced, peers, prefix)
  t.true(copied.results.flat().every((r) => r.status === 'pushed'))
  t.true(copied.sink.counts.blobs.uploaded > 0, JSON.stringify(copied.sink.counts))
  await assertCopied(t, peers, prefix, images)
})
