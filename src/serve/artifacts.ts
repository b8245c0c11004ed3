/**
 * What `serve` answers for the publishers' artifacts a bundle carries (bundle.json, issue 19): their manifests and
 * blobs under the image's repositories, cosign's tags (`sha256-<hex>.sig|.att|.sbom`), and the OCI 1.1 referrers API
 * (`GET /v2/<name>/referrers/<digest>[?artifactType=…]`), so `cosign verify` and admission controllers pointed at a
 * served bundle find them as they would upstream.
 */
import type {Digest} from '../oci/digest.js'
import {MediaType} from '../oci/media-types.js'
import type {Descriptor} from '../oci/types.js'
import type {BundleArtifact} from '../bundle/layout.js'

/** What a served repository keeps of referrers (catalog.ts ServedRepository has this field). */
export interface HasReferrers {
  referrers?: Map<Digest, Descriptor[]>
}

/** A referrer as the referrers API lists it (its manifest's artifactType, else its config's media type). */
export function referrerDescriptor(a: BundleArtifact, annotations?: Record<string, string>): Descriptor {
  return {mediaType: a.mediaType, digest: a.digest, size: a.size, ...(a.artifactType ? {artifactType: a.artifactType} : {}), ...(annotations ? {annotations} : {})}
}

/** Record `a`'s referrer entry in `repo` (once per digest). */
export function addReferrer(repo: HasReferrers, subject: Digest, desc: Descriptor): void {
  repo.referrers ??= new Map()
  const listed = repo.referrers.get(subject) ?? []
  if (!listed.some((d) => d.digest === desc.digest)) listed.push(desc)
  repo.referrers.set(subject, listed)
}

/** The referrers API's answer: an OCI index (empty when none), filtered by artifactType when asked (and said so). */
export function referrersAnswer(repo: HasReferrers, subject: Digest, artifactType?: string): {body: unknown; headers: Record<string, string>} {
  const all = repo.referrers?.get(subject) ?? []
  const manifests = artifactType ? all.filter((d) => d.artifactType === artifactType) : all
  return {
    body: {schemaVersion: 2, mediaType: MediaType.OciIndex, manifests},
    headers: {'Content-Type': MediaType.OciIndex, ...(artifactType ? {'OCI-Filters-Applied': 'artifactType'} : {})},
  }
}
