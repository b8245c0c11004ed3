/**
 * `kubeferry inventory REGISTRY/PREFIX`: what an internal registry holds under a prefix, through its API only: the
 * repositories come from the image names the operator knows (a lockfile, a bundle.json or a bundle, placed under the
 * prefix as `push` places them), so no `_catalog` access is needed; then `tags/list` per repository, each tag's
 * manifests, and a HEAD of every config and layer they name.
 */
import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import type {BundleMetadata} from '../bundle/layout.js'
import {isPartedPath} from '../bundle/parts.js'
import {BundleReader} from '../bundle/reader.js'
import {readLockfile} from '../kube/lockfile.js'
import {isKubeferryError, KubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import {parseReference, type Reference} from '../oci/reference.js'
import {walkSourceOf} from '../oci/source.js'
import {treeNodes, walkFromRaw} from '../oci/walk.js'
import type {RegistryClient} from '../registry/client.js'
import {targetRepositories} from '../registry/names.js'
import type {PushDestination} from '../registry/rename.js'
import {registrySource} from '../registry/source.js'
import {mapLimit} from '../util/async.js'
import {INVENTORY_VERSION, type Inventory} from './inventory-file.js'

/** The image names of a lockfile, a bundle.json, or a bundle (one file or its first part). */
export async function imageNamesFrom(path: string): Promise<string[]> {
  if (!existsSync(path) && !isPartedPath(path)) throw new KubeferryError('INVALID_ARGUMENT', `--images-from ${path}: no such file`, {hint: 'give a lockfile, a bundle.json or a bundle'})
  let data: {images?: Array<{name?: string; reference?: string}>; version?: number; schemaVersion?: number} | undefined
  try {
    data = JSON.parse(await readFile(path, 'utf8')) as typeof data
  } catch {
    data = undefined // not JSON: a bundle
  }
  if (data?.version === 1 && data.schemaVersion === undefined) return (await readLockfile(path)).images.map((i) => i.reference)
  if (data && Array.isArray(data.images)) return data.images.map((i) => i.name ?? '').filter(Boolean)
  const meta: BundleMetadata = await (await BundleReader.open(path)).metadata()
  return meta.images.map((i) => i.name)
}

export interface RegistryInventoryOptions {
  destination: PushDestination
  /** Upstream image names (`registry.k8s.io/pause:3.10`): their repositories under the prefix are listed. */
  images: string[]
  /** More repositories, as named in the registry (`k8s/pause`). */
  repositories?: string[]
  concurrency?: number
  tool: string
}

const notFound = (error: unknown): boolean => isKubeferryError(error) && (error.code === 'NOT_FOUND' || /\b404\b|not found/i.test(error.message))

export async function takeRegistryInventory(client: RegistryClient, options: RegistryInventoryOptions): Promise<Inventory> {
  const {destination} = options
  const repositories = new Set(options.repositories ?? [])
  for (const name of options.images) {
    const ref = parseReference(name)
    for (const repository of targetRepositories({registry: ref.registry, repository: ref.repository}, {prefix: destination.prefix})) repositories.add(repository)
  }
  const source = registrySource(client)
  const images: Inventory['images'] = []
  const blobs = new Set<string>()
  const concurrency = options.concurrency ?? 8
  await mapLimit([...repositories].sort(), concurrency, async (repository) => {
    const repo: Reference = {registry: destination.registry, repository}
    let tags: string[]
    try {
      tags = await client.listTags(repo)
    } catch (error) {
      if (notFound(error)) return // not in this registry: nothing held there
      throw error
    }
    await mapLimit(tags.sort(), 2, async (tag) => {
      const ref = {...repo, tag}
      const top = await source.manifest(ref)
      if (!top) return
      const what = `${destination.registry}/${repository}:${tag}`
      const tree = await walkFromRaw(walkSourceOf(source, ref), top, {what, toError: (problem) => new KubeferryError('REGISTRY_ERROR', problem.message)})
      images.push({name: what, digest: top.digest})
      const wanted = new Set<Digest>()
      for (const node of treeNodes(tree!)) {
        blobs.add(node.raw.digest)
        if (node.manifest) for (const d of [node.manifest.config, ...node.manifest.layers]) wanted.add(d.digest)
      }
      const held = await mapLimit([...wanted], concurrency, (digest) => client.blobExists(repo, digest))
      ;[...wanted].forEach((digest, i) => held[i] && blobs.add(digest))
    })
  })
  const where = destination.prefix ? `${destination.registry}/${destination.prefix}` : destination.registry
  return {kubeferryInventory: INVENTORY_VERSION, kind: 'registry', source: where, created: new Date().toISOString(), tool: options.tool, images, blobs: [...blobs], chains: []}
}
