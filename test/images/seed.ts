/**
 * Seed a registry with test images through kubeferry's own RegistryClient (no second registry client in the
 * tests): blobs first (uploadBlob, skipped when blobExists unless the registry is known empty), then each
 * platform manifest by digest, then the index by tag, all bytes as the builder wrote them (same digests).
 * Credentials, when given, go to the client as a static provider, so Basic and Bearer registries both work.
 */
import {createReadStream} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {mapLimit} from '../../src/util/async.js'
import {RegistryClient} from '../../src/registry/client.js'
import {staticCredentialProvider} from '../../src/registry/auth/credentials.js'
import type {Digest} from '../../src/oci/digest.js'
import type {Reference} from '../../src/oci/reference.js'
import type {TestImage} from '../harness/peers.js'

export interface SeedTarget {
  /** http://127.0.0.1:PORT */
  url: string
  username?: string
  password?: string
}

export interface SeedSource {
  images: TestImage[]
  blobPath(digest: string): string
}

export interface SeedOptions {
  /** Images pushed at once (default 6). */
  concurrency?: number
  /** Push under `prefix/<repository>` instead of the image's own repository. */
  prefix?: string
  /** The registry is known empty: skip the existence checks. */
  fresh?: boolean
}

/** A client for one test registry: loopback is plain http by default; credentials only when given. */
export function seedClient(target: SeedTarget): RegistryClient {
  const host = new URL(target.url).host
  const credentials = staticCredentialProvider(target.username ? {[host]: {username: target.username, password: target.password ?? ''}} : {})
  return new RegistryClient({credentials})
}

/**
 * Push every image of `source` into `target` under its canonical repository path (or `prefix/`+path),
 * `concurrency` images at once.
 */
export async function pushImageSet(source: SeedSource, target: SeedTarget, options: SeedOptions = {}): Promise<void> {
  const client = seedClient(target)
  const registry = new URL(target.url).host
  // Blob uploads in flight or done, by `repository@digest`. Images of one repository (pause:3.6, :3.8, …) share
  // blobs; distribution's filesystem driver races when the same blob is committed twice at once (seen as a later
  // manifest PUT failing with MANIFEST_BLOB_UNKNOWN), so each blob goes up once per repository.
  const uploads = new Map<string, Promise<void>>()
  const uploadOnce = (repo: Reference, digest: Digest, size: number): Promise<void> => {
    const key = `${repo.repository}@${digest}`
    let upload = uploads.get(key)
    if (!upload) {
      upload = (async () => {
        if (!options.fresh && (await client.blobExists(repo, digest))) return
        await client.uploadBlob(repo, {digest, size}, async () => createReadStream(source.blobPath(digest)))
      })()
      uploads.set(key, upload)
    }
    return upload
  }
  const manifest = async (digest: string, mediaType: string) => ({bytes: await readFile(source.blobPath(digest)), mediaType, digest: digest as Digest})

  const pushOne = async (image: TestImage): Promise<void> => {
    const repo: Reference = {registry, repository: options.prefix ? `${options.prefix}/${image.repository}` : image.repository}
    const blobs = new Map<string, number>()
    for (const p of image.platforms) {
      blobs.set(p.config, p.configSize)
      for (const l of p.layers) blobs.set(l.digest, l.size)
    }
    await Promise.all([...blobs].map(([digest, size]) => uploadOnce(repo, digest as Digest, size)))
    await Promise.all(image.platforms.map(async (p) => client.putManifest(repo, p.digest, await manifest(p.digest, p.manifestMediaType))))
    await client.putManifest(repo, image.tag, await manifest(image.digest, image.mediaType))
  }
  try {
    await mapLimit(source.images, options.concurrency ?? 6, pushOne)
  } finally {
    await client.close()
  }
}
