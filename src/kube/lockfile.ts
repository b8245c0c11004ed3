import {readFile, rename, writeFile} from 'node:fs/promises'
import {KubeferryError, describeError, isKubeferryError} from '../oci/errors.js'
import {isDigest, type Digest} from '../oci/digest.js'
import type {RegistryClient} from '../registry/client.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {resolveImage} from '../registry/resolve.js'
import type {ImageList} from './types.js'

/** One pinned image: what `create` must fetch so the bundle holds exactly what was reviewed. */
export interface LockedImage {
  /** Fully qualified reference as listed (`registry.k8s.io/pause:3.10`). */
  reference: string
  digest: Digest
  mediaType: string
  /** `os/arch[/variant]` of the index (or the single manifest). */
  platforms: string[]
}

export interface Lockfile {
  version: 1
  kubernetesVersion?: string
  images: LockedImage[]
}

/** Resolve every entry of the list to its digest; all failures are reported together in one error. */
export async function lockImageList(client: RegistryClient, list: ImageList, options: {concurrency?: number} = {}): Promise<Lockfile> {
  const refs = list.entries.map((e) => e.reference)
  const locked: LockedImage[] = new Array(refs.length)
  const failures: string[] = []
  let next = 0
  const worker = async () => {
    while (next < refs.length) {
      const i = next++
      try {
        const resolved = await resolveImage(client, refs[i])
        locked[i] = {reference: formatReference({...refs[i], digest: undefined}), digest: resolved.digest, mediaType: resolved.mediaType, platforms: resolved.platforms}
      } catch (error) {
        failures.push(`${formatReference(refs[i])}: ${isKubeferryError(error) ? error.message : describeError(error)}`)
      }
    }
  }
  await Promise.all(Array.from({length: Math.max(1, Math.min(options.concurrency ?? 8, refs.length))}, worker))
  if (failures.length > 0) {
    throw new KubeferryError('REGISTRY_ERROR', `could not resolve ${failures.length} of ${refs.length} images: ${failures.join('; ')}`, {
      hint: 'check registry access (or --mirror / --insecure-registry) and run again',
    })
  }
  return {version: 1, ...(list.kubeadm ? {kubernetesVersion: list.kubeadm.version} : {}), images: locked}
}

export async function writeLockfile(path: string, lock: Lockfile): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  try {
    await writeFile(tmp, `${JSON.stringify(lock, null, 2)}\n`)
    await rename(tmp, path)
  } catch (error) {
    throw new KubeferryError('IO', `cannot write lockfile ${path}: ${(error as NodeJS.ErrnoException).code ?? describeError(error)}`, {hint: 'check the directory exists and is writable', cause: error})
  }
}

function bad(path: string, why: string): KubeferryError {
  return new KubeferryError('INVALID_ARGUMENT', `lockfile ${path} is invalid: ${why}`, {hint: 'write it again with `kubeferry images … --lock FILE`'})
}

/** Read and validate a lockfile written by `images --lock` (for `create`). */
export async function readLockfile(path: string): Promise<Lockfile> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new KubeferryError('IO', `cannot read lockfile ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, {hint: 'give the file written by `kubeferry images --lock`', cause: error})
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    throw bad(path, `not JSON (${describeError(error)})`)
  }
  const doc = data as Partial<Lockfile>
  if (typeof doc !== 'object' || doc === null || doc.version !== 1) throw bad(path, 'expected {"version": 1, "images": [...]}')
  if (!Array.isArray(doc.images)) throw bad(path, '"images" must be a list')
  const images = doc.images.map((image, i) => {
    const where = `images[${i}]`
    if (typeof image !== 'object' || image === null) throw bad(path, `${where} is not an object`)
    if (typeof image.reference !== 'string') throw bad(path, `${where}.reference is missing`)
    try {
      parseReference(image.reference)
    } catch (error) {
      throw bad(path, `${where}.reference: ${describeError(error)}`)
    }
    if (typeof image.digest !== 'string' || !isDigest(image.digest)) throw bad(path, `${where}.digest must be sha256:<64 hex>`)
    if (typeof image.mediaType !== 'string' || image.mediaType === '') throw bad(path, `${where}.mediaType is missing`)
    if (!Array.isArray(image.platforms) || image.platforms.some((p) => typeof p !== 'string')) throw bad(path, `${where}.platforms must be a list of os/arch`)
    return {reference: image.reference, digest: image.digest, mediaType: image.mediaType, platforms: image.platforms}
  })
  return {version: 1, ...(typeof doc.kubernetesVersion === 'string' ? {kubernetesVersion: doc.kubernetesVersion} : {}), images}
}
