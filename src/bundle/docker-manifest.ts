/**
 * The `docker save`-style `manifest.json` of a bundle: one entry per image reference that has the given platform,
 * `Config`/`Layers` pointing at the OCI blobs (docker accepts any path in the tar), `RepoTags` fully qualified
 * (`docker.io/library/busybox:1.36`): docker shortens it itself, while podman would qualify a short name with
 * `localhost/`. Digest-only references get no tag.
 */
import {formatReference, parseReference} from '../oci/reference.js'
import {blobPath, type BundleImage} from './layout.js'
import {platformMatches, parsePlatform} from '../oci/platform.js'

export interface DockerManifestEntry {
  Config: string
  RepoTags: string[]
  Layers: string[]
}

/** The RepoTag docker should give an image reference, or undefined for a digest-only reference. */
export function repoTag(name: string): string | undefined {
  const ref = parseReference(name, {defaultTag: false})
  if (!ref.tag) return undefined
  return formatReference({registry: ref.registry, repository: ref.repository, tag: ref.tag})
}

export function dockerManifest(images: BundleImage[], platform: string): DockerManifestEntry[] {
  const wanted = parsePlatform(platform)
  const out: DockerManifestEntry[] = []
  for (const image of images) {
    const match = image.platforms.find((p) => platformMatches(wanted, parsePlatform(p.platform)) && parsePlatform(p.platform).variant === wanted.variant)
      ?? image.platforms.find((p) => platformMatches(wanted, parsePlatform(p.platform)))
    if (!match) continue
    const tag = repoTag(image.name)
    out.push({Config: blobPath(match.config.digest), RepoTags: tag ? [tag] : [], Layers: match.layers.map((l) => blobPath(l.digest))})
  }
  return out
}

export function dockerManifestBytes(images: BundleImage[], platform: string): Buffer {
  return Buffer.from(JSON.stringify(dockerManifest(images, platform)))
}
