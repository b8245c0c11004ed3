/**
 * Signed test images in a real registry: copies of test images under a repository prefix of the caller's (so that
 * tests sharing the peers never see each other's artifacts, and the default images stay without artifacts), each
 * with cosign's artifacts and an OCI 1.1 referrer (cosign.ts). Idempotent: the images and artifacts are
 * deterministic but for the signatures (ECDSA is randomised), so a second seed under the same prefix adds layers.
 * Use a fresh prefix per test file.
 */
import type {Peers, RegistryPeer, TestImage} from '../harness/peers.js'
import {pushImageSet, seedClient} from './seed.js'
import {makeSigner, pushArtifactSet, type PushedArtifact, type Signer} from './cosign.js'
import {join} from 'node:path'
import type {Digest} from '../../src/oci/digest.js'

/** The identity of the keyless-style signatures (registry.k8s.io's release signer). */
export const KEYLESS_IDENTITY = 'krel-trust@k8s-releng-prod.iam.gserviceaccount.com'

export interface SignedImage {
  /** The copy's reference in the registry: `127.0.0.1:PORT/<prefix>/pause:3.10`. */
  reference: string
  image: TestImage
  artifacts: PushedArtifact[]
}

export interface SignedSet {
  signers: {key: Signer; keyless: Signer}
  signed: SignedImage[]
  /** Copies pushed without any artifact (the unsigned ones). */
  unsigned: string[]
}

/**
 * Push copies of `names` (test image names, e.g. registry.k8s.io/pause:3.10) to `registry` under `prefix/`; the first
 * `signedCount` of them get the artifact set (on the index and the first platform's manifest), the rest none.
 */
export async function seedSignedImages(peers: Peers, registry: RegistryPeer, prefix: string, names: string[], signedCount = names.length): Promise<SignedSet> {
  const images = names.map((name) => {
    const image = peers.images.find((i) => i.name === name)
    if (!image) throw new Error(`no test image ${name}`)
    return image
  })
  await pushImageSet({images, blobPath: (digest) => join(peers.imageDir, 'blobs', 'sha256', digest.slice(7))}, registry, {prefix})
  const signers = {key: makeSigner(), keyless: makeSigner(KEYLESS_IDENTITY)}
  const client = seedClient(registry)
  const signed: SignedImage[] = []
  try {
    for (const image of images.slice(0, signedCount)) {
      const repo = {registry: registry.host, repository: `${prefix}/${image.repository}`}
      const artifacts = await pushArtifactSet(client, repo, {digest: image.digest as Digest, size: image.size, mediaType: image.mediaType}, image.platforms[0].digest as Digest, signers)
      signed.push({reference: `${registry.host}/${prefix}/${image.repository}:${image.tag}`, image, artifacts})
    }
  } finally {
    await client.close()
  }
  const unsigned = images.slice(signedCount).map((image) => `${registry.host}/${prefix}/${image.repository}:${image.tag}`)
  return {signers, signed, unsigned}
}
