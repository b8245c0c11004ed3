/**
 * Index-type artifacts in a real registry (issue 19 d3): what publishers push for a multi-platform image besides
 * single manifests. Both are OCI image indexes whose children (one per platform) are SBOM / attestation manifests
 * pushed by digest before the index:
 *  - a cosign `.sbom` tag holding an index (a multi-platform SBOM, children with their platform);
 *  - an OCI 1.1 referrer that is an index (`subject` = the image, `artifactType`), published as a client does on a
 *    registry without the referrers API: by digest, then listed in the referrers tag schema index (`sha256-<hex>`).
 */
import type {RegistryClient} from '../../src/registry/client.js'
import type {Digest} from '../../src/oci/digest.js'
import type {Reference} from '../../src/oci/reference.js'
import {createHash} from 'node:crypto'
import {cosignConfig, cosignTag, pushManifest, spdxDocument, type Layer} from './cosign.js'
import type {TestImage} from '../harness/peers.js'

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const EMPTY: Layer = {mediaType: 'application/vnd.oci.empty.v1+json', bytes: Buffer.from('{}')}
export const INDEX_REFERRER_TYPE = 'application/vnd.kubeferry.test.sbom-index'

const sha = (bytes: Buffer): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
const platformOf = (p: string) => {
  const [os, architecture, variant] = p.split('/')
  return {os, architecture, ...(variant ? {variant} : {})}
}

export interface PushedIndexArtifact {
  kind: 'sbom' | 'referrer'
  subject: Digest
  /** cosign's tag, or the referrers tag schema's tag that lists it. */
  tag: string
  digest: Digest
  size: number
  /** The child manifests in index order. */
  children: Array<{digest: Digest; size: number; platform: string; blobs: Digest[]}>
}

async function pushIndex(client: RegistryClient, repo: Reference, where: string | 'digest', image: TestImage, extra: Record<string, unknown>, subject?: TestImage): Promise<Omit<PushedIndexArtifact, 'kind' | 'subject' | 'tag'>> {
  const children = []
  for (const p of image.platforms) {
    const layers: Layer[] = [{mediaType: 'application/spdx+json', bytes: spdxDocument(`${repo.repository} ${p.platform}`, p.digest)}]
    const pushed = await pushManifest(client, repo, 'digest', subject ? EMPTY : cosignConfig(layers), layers, subject ? {artifactType: 'application/spdx+json'} : {})
    children.push({digest: pushed.digest, size: pushed.size, platform: p.platform, blobs: pushed.blobs})
  }
  const index = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: OCI_INDEX, ...extra, manifests: children.map((c) => ({mediaType: OCI_MANIFEST, digest: c.digest, size: c.size, platform: platformOf(c.platform)}))}))
  const digest = sha(index)
  await client.putManifest(repo, where === 'digest' ? digest : where, {bytes: index, digest, mediaType: OCI_INDEX})
  return {digest, size: index.length, children}
}

/** On `image` (already in `repo`): a `.sbom` index and a referrer index, each with one SBOM manifest per platform. */
export async function pushIndexArtifacts(client: RegistryClient, repo: Reference, image: TestImage): Promise<PushedIndexArtifact[]> {
  const subject = image.digest as Digest
  const sbomTag = cosignTag(subject, 'sbom')
  const sbom = await pushIndex(client, repo, sbomTag, image, {})
  const referrer = await pushIndex(client, repo, 'digest', image, {artifactType: INDEX_REFERRER_TYPE, subject: {mediaType: image.mediaType, digest: subject, size: image.size}}, image)
  const schemaTag = cosignTag(subject, '')
  const listed = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{mediaType: OCI_INDEX, digest: referrer.digest, size: referrer.size, artifactType: INDEX_REFERRER_TYPE}]}))
  await client.putManifest(repo, schemaTag, {bytes: listed, digest: sha(listed), mediaType: OCI_INDEX})
  return [
    {kind: 'sbom', subject, tag: sbomTag, ...sbom},
    {kind: 'referrer', subject, tag: schemaTag, ...referrer},
  ]
}
