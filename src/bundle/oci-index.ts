/**
 * The bundle's `index.json`: one descriptor per image reference, the upstream digest of its index or manifest,
 * annotated with the full name (see layout.ts).
 */
import {MediaType} from '../oci/media-types.js'
import {ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, type BundleMetadata} from './layout.js'

/**
 * The media type written in index.json's descriptors: Docker types are given as their OCI equivalents (same bytes,
 * same digest). skopeo/podman's `oci-archive:` (containers/image 5.23, skopeo 1.9) skip index.json entries that are
 * not OCI-typed, so a Docker manifest list would be invisible to them; containerd imports either way (its check is
 * structural) and keeps the upstream digest. The true media type stays in bundle.json (`BundleImage.mediaType`),
 * which is what push/serve/load must use.
 */
export function indexDescriptorMediaType(mediaType: string): string {
  if (mediaType === MediaType.DockerManifestList) return MediaType.OciIndex
  if (mediaType === MediaType.DockerManifest) return MediaType.OciManifest
  return mediaType
}

export function ociIndexBytes(metadata: BundleMetadata): Buffer {
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: metadata.images.map((image) => ({
      mediaType: indexDescriptorMediaType(image.mediaType),
      digest: image.digest,
      size: image.size,
      annotations: {[ANNOTATION_CONTAINERD_NAME]: image.name, [ANNOTATION_REF_NAME]: image.name},
    })),
  }
  return Buffer.from(JSON.stringify(index))
}
