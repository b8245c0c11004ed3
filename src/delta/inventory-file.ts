/**
 * The inventory file (`kubeferry inventory … -o FILE`, issue 20): a small JSON text of what a registry (under a
 * prefix) or a node's runtime holds, taken inside the gap and carried back out so `create --base FILE` makes the
 * delta against what is really there. No secrets, no image bytes: names, digests, layer ChainIDs. A person can read
 * what leaves the site.
 */
import {readFile, rename, writeFile} from 'node:fs/promises'
import {KubeferryError} from '../oci/errors.js'
import {isDigest} from '../oci/digest.js'

export const INVENTORY_VERSION = 1

export interface Inventory {
  kubeferryInventory: typeof INVENTORY_VERSION
  /** `registry`: what `push` can rely on; `runtime`: what `load`/install.sh can rely on (one node's store). */
  kind: 'registry' | 'runtime'
  /** `registry.corp:5000/k8s`, or `containerd /run/containerd/containerd.sock namespace k8s.io`. */
  source: string
  runtime?: 'containerd' | 'docker' | 'podman'
  created: string
  tool: string
  /** The images found, by name, with the digest the name points at. */
  images: Array<{name: string; digest: string}>
  /** Blob digests held (registry: HEAD answered 200; containerd: its content store). */
  blobs: string[]
  /** docker/podman: the layer ChainIDs of the images present (these stores keep no compressed blobs). */
  chains: string[]
}

export function isInventory(data: unknown): data is Inventory {
  return typeof data === 'object' && data !== null && (data as {kubeferryInventory?: unknown}).kubeferryInventory !== undefined
}

/** Checks the shape of a parsed inventory (read back with `create --base`). */
export function validInventory(data: unknown, path: string): Inventory {
  const bad = (why: string): KubeferryError => new KubeferryError('INVALID_ARGUMENT', `inventory ${path} is invalid: ${why}`, {hint: 'take it again with `kubeferry inventory … -o FILE`'})
  if (!isInventory(data)) throw bad('no "kubeferryInventory" member')
  if (data.kubeferryInventory !== INVENTORY_VERSION) throw bad(`version ${String(data.kubeferryInventory)} is not ${INVENTORY_VERSION}`)
  if (data.kind !== 'registry' && data.kind !== 'runtime') throw bad('"kind" must be "registry" or "runtime"')
  for (const key of ['blobs', 'chains'] as const) {
    if (!Array.isArray(data[key]) || data[key].some((d) => typeof d !== 'string' || !isDigest(d))) throw bad(`"${key}" must be a list of sha256 digests`)
  }
  if (!Array.isArray(data.images)) throw bad('"images" must be a list')
  return data
}

/** The inventory with sorted, de-duplicated lists: two takes of the same state give the same text. */
export function sortedInventory(inventory: Inventory): Inventory {
  return {
    ...inventory,
    images: [...inventory.images].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    blobs: [...new Set(inventory.blobs)].sort(),
    chains: [...new Set(inventory.chains)].sort(),
  }
}

/** Writes the inventory (sortedInventory) as JSON text. */
export async function writeInventory(path: string, inventory: Inventory): Promise<void> {
  const sorted = sortedInventory(inventory)
  const temp = `${path}.partial`
  try {
    await writeFile(temp, `${JSON.stringify(sorted, null, 2)}\n`)
    await rename(temp, path)
  } catch (error) {
    throw new KubeferryError('IO', `cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {hint: 'check the directory exists and is writable', cause: error})
  }
}

export async function readInventoryText(path: string): Promise<string> {
  return readFile(path, 'utf8')
}
