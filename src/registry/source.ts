/**
 * A registry as an ImageSource: the client's manifests (bytes as served, digest checked by the client) and blob
 * streams (verified while they flow). `create` plans and downloads through this; a future registry → registry copy
 * is this source and a registry sink.
 */
import type {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import type {Reference} from '../oci/reference.js'
import type {BlobReadOptions, ImageSource} from '../oci/source.js'
import type {Descriptor, RawManifest} from '../oci/types.js'
import type {RegistryClient} from './client.js'
import {findReferrers, findTagged} from './referrers.js'
import {ArtifactIndex} from './artifact-index.js'

export class RegistrySource implements ImageSource {
  readonly label = 'registry'
  /** With `lookupIndex`: what the artifact lookups learn once per endpoint and repository (artifact-index.ts). */
  private readonly index?: ArtifactIndex

  constructor(
    readonly client: RegistryClient,
    options: {lookupIndex?: boolean} = {},
  ) {
    if (options.lookupIndex) this.index = new ArtifactIndex(client)
  }

  /** Artifact lookups about `repo` will follow (with `lookupIndex`: its tag list is read now). */
  expectArtifactLookups(repo: Reference): void {
    this.index?.expect(repo)
  }

  /** cosign's tags and the OCI 1.1 referrers (referrers.ts: the first endpoint that answers decides). */
  findTagged(ref: Reference, tag: string): Promise<RawManifest | undefined> {
    return findTagged(this.client, ref, tag, this.index)
  }

  referrers(ref: Reference, digest: Digest, warn?: (message: string) => void): Promise<Descriptor[]> {
    return findReferrers(this.client, ref, digest, warn, this.index)
  }

  /** By `digest` when given (in `ref`'s repository), else what `ref` names. A registry without it throws NOT_FOUND. */
  async manifest(ref: Reference, digest?: Digest): Promise<RawManifest> {
    const parsed = digest ? await this.client.getManifestByDigest(ref, digest) : await this.client.getManifest(ref)
    return parsed.raw
  }

  async blob(ref: Reference, desc: Pick<Descriptor, 'digest' | 'size'>, options: BlobReadOptions = {}): Promise<Readable> {
    if (options.offset) {
      // The client resumes interrupted transfers itself (Range); a caller-driven offset is not offered yet.
      throw new KubeferryError('INTERNAL', `blob ${desc.digest}: reading a registry blob from an offset is not supported`)
    }
    return this.client.openBlob(ref, {digest: desc.digest, size: desc.size}, {
      ...(options.onBytes ? {onProgress: options.onBytes} : {}),
      ...(options.signal ? {signal: options.signal} : {}),
      ...(options.resume ? {resume: options.resume} : {}),
    })
  }
}

/**
 * The registry client as the ImageSource `create` plans and downloads through. `lookupIndex`: for one build, learn
 * each repository's artifact tags from one tag list and each endpoint's referrers API once (artifact-index.ts).
 */
export function registrySource(client: RegistryClient, options: {lookupIndex?: boolean} = {}): RegistrySource {
  return new RegistrySource(client, options)
}
