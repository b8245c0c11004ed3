/**
 * `create --base OLD`: what the base holds, from whatever the operator still has of it: the earlier bundle (one file
 * or its parts), its bundle.json, the lockfile it was built from, or an inventory taken inside (inventory-file.ts).
 */
import {existsSync} from 'node:fs'
import {open, readFile} from 'node:fs/promises'
import {basename} from 'node:path'
import {checksumFileFor, reliedOn} from '../bundle/contract.js'
import type {DeltaBase} from '../bundle/delta.js'
import {uniqueBlobs} from '../bundle/image-blobs.js'
import type {BundleMetadata} from '../bundle/layout.js'
import {isPartedPath} from '../bundle/parts.js'
import {parsePartPath} from '../bundle/parts-naming.js'
import {BundleReader} from '../bundle/reader.js'
import {readLockfile, type Lockfile} from '../kube/lockfile.js'
import {KubeferryError} from '../oci/errors.js'
import {isInventory, validInventory} from './inventory-file.js'

/** Plans the images of a lockfile for the delta's platforms (no download) and gives every blob they name. */
export type LockBlobs = (lock: Lockfile) => Promise<string[]>

/** Every blob a bundle of `meta` names: what it carries and, for a delta, what it relied on (the site holds both). */
function metadataBlobs(meta: BundleMetadata): string[] {
  return [...new Set([...reliedOn(meta).keys(), ...uniqueBlobs(meta.images ?? []).keys()])]
}

function checkMetadata(data: unknown, path: string): BundleMetadata {
  const meta = data as BundleMetadata
  if (!Array.isArray(meta?.images) || meta.schemaVersion === undefined) {
    throw new KubeferryError('INVALID_ARGUMENT', `--base ${path} is not a bundle, a bundle.json, a lockfile or an inventory`, {hint: 'give the earlier bundle (or its first part), its kubeferry/bundle.json, its lockfile, or a file written by `kubeferry inventory`'})
  }
  return meta
}

export async function isTar(path: string): Promise<boolean> {
  const handle = await open(path, 'r')
  try {
    const buffer = Buffer.alloc(8)
    await handle.read(buffer, 0, 8, 257)
    return buffer.subarray(0, 5).toString('latin1') === 'ustar'
  } finally {
    await handle.close()
  }
}

/** The whole bundle's sha256 as its .sha256 file states it, when that file is beside it. */
async function bundleSha256(path: string): Promise<string | undefined> {
  const side = checksumFileFor(parsePartPath(path)?.bundlePath ?? path)
  if (!existsSync(side)) return undefined
  const hex = (await readFile(side, 'utf8')).trim().split(/\s+/)[0]
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined
}

export async function readDeltaBase(path: string, lockBlobs: LockBlobs): Promise<DeltaBase> {
  if (!existsSync(path) && !isPartedPath(path)) throw new KubeferryError('INVALID_ARGUMENT', `--base ${path}: no such file`, {hint: 'give the earlier bundle, its bundle.json, its lockfile or an inventory file'})
  const name = basename(parsePartPath(path)?.bundlePath ?? path)
  if (isPartedPath(path) || (await isTar(path))) {
    const reader = await BundleReader.open(path)
    const meta = checkMetadata(await reader.metadata(), path)
    const sha256 = await bundleSha256(path)
    return {kind: 'bundle', name, ...(sha256 ? {sha256} : {}), for: ['push', 'load'], blobs: new Set(metadataBlobs(meta)), chains: new Set()}
  }
  const text = await readFile(path, 'utf8')
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    throw new KubeferryError('INVALID_ARGUMENT', `--base ${path} is neither a tar nor JSON`, {hint: 'give the earlier bundle, its bundle.json, its lockfile or an inventory file'})
  }
  if (isInventory(data)) {
    const inventory = validInventory(data, path)
    const kind = inventory.kind === 'registry' ? 'registry-inventory' : 'runtime-inventory'
    return {kind, name: `${name} (${inventory.source})`, for: inventory.kind === 'registry' ? ['push'] : ['load'], blobs: new Set(inventory.blobs), chains: new Set(inventory.chains)}
  }
  if ((data as {version?: unknown}).version === 1 && Array.isArray((data as {images?: unknown}).images) && (data as {schemaVersion?: unknown}).schemaVersion === undefined) {
    const lock = await readLockfile(path)
    return {kind: 'lockfile', name, for: ['push', 'load'], blobs: new Set(await lockBlobs(lock)), chains: new Set()}
  }
  const meta = checkMetadata(data, path)
  return {kind: 'bundle', name, for: ['push', 'load'], blobs: new Set(metadataBlobs(meta)), chains: new Set()}
}
