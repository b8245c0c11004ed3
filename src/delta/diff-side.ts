/**
 * One side of `kubeferry diff`: the images of a set as kubeferry knows them (index, platform manifests, configs and
 * layers with their sizes), from a bundle (one file or its parts), its kubeferry/bundle.json, or a lockfile, whose
 * manifests are read from the registry (no layer is downloaded).
 */
import {existsSync} from 'node:fs'
import {readFile, stat} from 'node:fs/promises'
import {basename} from 'node:path'
import type {BundleImage} from '../bundle/layout.js'
import {isPartedPath} from '../bundle/parts.js'
import {BundleReader} from '../bundle/reader.js'
import {readLockfile, type Lockfile} from '../kube/lockfile.js'
import {KubeferryError} from '../oci/errors.js'
import {isTar} from './base.js'

export interface DiffSide {
  /** How the operator named it (its file name). */
  label: string
  kind: 'bundle' | 'bundle.json' | 'lockfile'
  images: BundleImage[]
  platforms: string[]
}

/** A file that is read as JSON (bundle.json, lockfile) is small: anything larger is not one. */
const MAX_JSON_BYTES = 64 * 1024 * 1024

/** What `path` is, before anything needs the registry: a loaded side, or a lockfile still to plan. */
export type ReadSide = DiffSide | {label: string; kind: 'lockfile'; lock: Lockfile; path: string}

function notASide(path: string, why: string): KubeferryError {
  return new KubeferryError('INVALID_ARGUMENT', `${path} ${why}: diff compares bundles, their kubeferry/bundle.json or lockfiles`, {
    hint: 'give an earlier and a later bundle (or the first part of one), bundle.json or lockfile (`kubeferry images --lock`)',
  })
}

function checkImages(images: unknown, path: string): BundleImage[] {
  const ok = Array.isArray(images) && images.every((i) => typeof i?.name === 'string' && typeof i?.digest === 'string' && Array.isArray(i?.platforms))
  if (!ok) throw notASide(path, 'lists no images in the form kubeferry writes')
  return images as BundleImage[]
}

export async function readSide(path: string): Promise<ReadSide> {
  const label = basename(path)
  if (!existsSync(path) && !isPartedPath(path)) throw new KubeferryError('INVALID_ARGUMENT', `${path}: no such file`, {hint: 'check the path; a bundle in parts is named by its first part (NAME.tar.001)'})
  if (isPartedPath(path) || (await isTar(path))) {
    const meta = await (await BundleReader.open(path)).metadata()
    return {label, kind: 'bundle', images: checkImages(meta.images, path), platforms: meta.platforms}
  }
  if ((await stat(path)).size > MAX_JSON_BYTES) throw notASide(path, 'is neither a tar nor a JSON file of a sensible size')
  let data: {schemaVersion?: unknown; version?: unknown; images?: unknown; platforms?: unknown}
  try {
    data = JSON.parse(await readFile(path, 'utf8')) as typeof data
  } catch {
    throw notASide(path, 'is neither a tar nor JSON')
  }
  if (data?.schemaVersion !== undefined) {
    const platforms = Array.isArray(data.platforms) ? data.platforms.filter((p): p is string => typeof p === 'string') : []
    return {label, kind: 'bundle.json', images: checkImages(data.images, path), platforms}
  }
  if (data?.version === 1 && Array.isArray(data.images)) return {label, kind: 'lockfile', lock: await readLockfile(path), path}
  throw notASide(path, 'is JSON but neither a bundle.json nor a lockfile')
}
