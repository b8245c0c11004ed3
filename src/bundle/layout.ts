/**
 * The bundle format in one place. A bundle is ONE uncompressed tar that is at the same time
 *  - an OCI image layout: `oci-layout`, `index.json` (one descriptor per image reference, the upstream digest of the
 *    index or manifest, annotated with the full name), `blobs/sha256/<hex>` (original registry bytes);
 *  - a `docker save` archive: `manifest.json` (`Config`, `RepoTags`, `Layers` pointing into `blobs/sha256/`) for ONE
 *    platform (`BundleMetadata.dockerPlatform`);
 *  - plus kubeferry's own files under `kubeferry/`, which docker, containerd, podman and skopeo ignore.
 *
 * Docker nodes of another platform: for every platform in the bundle there is `kubeferry/docker/<slug>.tar`, itself a
 * complete small tar holding one `manifest.json` for that platform. Because the bundle ends with exactly
 * END_OF_ARCHIVE_BYTES zero bytes, a loader can stream "bundle minus its end marker" followed by that fragment into
 * `docker load`; docker extracts entries in order, so the later `manifest.json` replaces the first.
 *
 * Tar rules: regular files only (no directories, links or devices), entries sorted by name, uid/gid 0, mode 0644
 * (0755 for install.sh), mtime = SOURCE_DATE_EPOCH or 0, ustar headers (no PAX timestamps), ends with 1024 zero bytes.
 */
import type {Digest} from '../oci/digest.js'
import {digestHex} from '../oci/digest.js'
import type {Platform} from '../oci/types.js'
import {formatPlatform} from '../oci/platform.js'

export const BUNDLE_SCHEMA_VERSION = 1

export const OCI_LAYOUT_FILE = 'oci-layout'
export const OCI_LAYOUT_CONTENT = '{"imageLayoutVersion":"1.0.0"}'
export const INDEX_FILE = 'index.json'
export const DOCKER_MANIFEST_FILE = 'manifest.json'
export const BLOBS_DIR = 'blobs/sha256/'
export const META_DIR = 'kubeferry/'
export const METADATA_FILE = 'kubeferry/bundle.json'
export const CHECKSUMS_FILE = 'kubeferry/SHA256SUMS'
export const INSTALL_SCRIPT_FILE = 'kubeferry/install.sh'
export const DOCKER_FRAGMENTS_DIR = 'kubeferry/docker/'

/** The tar's end-of-archive marker: two zero blocks, nothing after them. */
export const END_OF_ARCHIVE_BYTES = 1024
export const TAR_BLOCK = 512

/** Annotation containerd (`ctr import`, docker >= 25) reads for the image name: the full reference. */
export const ANNOTATION_CONTAINERD_NAME = 'io.containerd.image.name'
/**
 * OCI ref name; skopeo/podman `oci-archive:FILE:REF` match REF against it. We store the full reference too.
 * index.json descriptors carry the OCI media type even for Docker-typed content (see writer.ts
 * `indexDescriptorMediaType`); the content's true media type is `BundleImage.mediaType` in bundle.json.
 */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name'

export function blobPath(digest: Digest): string {
  return `${BLOBS_DIR}${digestHex(digest)}`
}

/** `linux-arm64-v8`-style file-name slug for a platform. */
export function platformSlug(platform: Platform | string): string {
  const text = typeof platform === 'string' ? platform : formatPlatform(platform)
  return text.replaceAll('/', '-')
}

export function dockerFragmentPath(platform: Platform | string): string {
  return `${DOCKER_FRAGMENTS_DIR}${platformSlug(platform)}.tar`
}

export interface BundleLayer {
  digest: Digest
  size: number
  mediaType: string
}

/** One platform of an image, as stored in the bundle. */
export interface BundlePlatformImage {
  platform: string // formatPlatform()
  digest: Digest // the platform manifest's digest
  mediaType: string
  size: number
  config: BundleLayer
  layers: BundleLayer[]
}

export interface BundleImage {
  /** Full canonical reference as loaders will name it, e.g. `registry.k8s.io/pause:3.10`. */
  name: string
  registry: string
  repository: string
  tag?: string
  /** The upstream digest of what `name` points to (an index or a single manifest), identical to the registry's. */
  digest: Digest
  mediaType: string
  size: number
  /** kubeadm role (`kube-apiserver`, `pause`, `etcd`, `coredns`, …) or `extra`. */
  role?: string
  /** Why it is in the bundle: `kubeadm v1.31.6`, `runtime containerd@1.7`, `--image`, `manifest:<file>`, … */
  sources?: string[]
  /** True when the index lists platforms whose manifests/blobs are not in the bundle. */
  sparse: boolean
  platforms: BundlePlatformImage[]
  /** The publishers' artifacts about it that were carried (absent when none; see BundleArtifact). */
  artifacts?: BundleArtifact[]
}

/**
 * A publisher's signature, attestation, SBOM or other OCI 1.1 referrer about an image (issue 19), carried as OCI
 * content: its manifest, config and layers are `blobs/sha256/…` entries (digests as upstream), recorded here only.
 * They are in neither index.json nor manifest.json, so docker, containerd, podman and skopeo see the images as before.
 */
export interface BundleArtifact {
  /** cosign's `.sig`, `.att`, `.sbom` tags, or an OCI 1.1 referrer (`subject` field; see `artifactType`). */
  kind: 'signature' | 'attestation' | 'sbom' | 'referrer'
  /** The digest it is about: the image's own (index or manifest) or one carried platform's manifest. */
  subject: Digest
  /** cosign's tag for it (`sha256-<hex>.sig`); none for a referrer. */
  tag?: string
  digest: Digest
  mediaType: string
  size: number
  artifactType?: string
  /** An image manifest's config and layers (absent for an index). */
  config?: BundleLayer
  layers?: BundleLayer[]
  /**
   * An index (a multi-platform SBOM or attestation, a referrer that is an index): every manifest under it as the walker
   * (oci/walk.ts) meets them, parents before children; absent for an image manifest.
   */
  manifests?: BundleArtifactManifest[]
}

/** One manifest under an index-type artifact: an image manifest with its config and layers, or a nested index. */
export interface BundleArtifactManifest {
  digest: Digest
  size: number
  mediaType: string
  /** `os/arch[/variant]` as its parent index lists it. */
  platform?: string
  config?: BundleLayer
  layers?: BundleLayer[]
}

/** `kubeferry/bundle.json`. Deterministic: no wall-clock time unless SOURCE_DATE_EPOCH is given. */
export interface BundleMetadata {
  schemaVersion: typeof BUNDLE_SCHEMA_VERSION
  tool: {name: 'kubeferry'; version: string}
  created?: string
  request: {
    kubernetesVersion?: string
    runtimes?: string[]
    images?: string[]
    imagesFiles?: string[]
    manifests?: string[]
    lockfile?: string
    platforms: string[]
  }
  platforms: string[]
  /** The platform `manifest.json` describes. */
  dockerPlatform: string
  images: BundleImage[]
  /** The blobs the bundle carries (a delta: without those it relies on). */
  blobs: {count: number; totalSize: number}
  /**
   * Only with create --trusted-root: the Sigstore trusted root keyless image signatures are checked against inside
   * (trust/trusted-root.ts), carried as a blob that only this names (loaders never see it).
   */
  trustedRoot?: BundleLayer
  /** Only in a delta bundle (create --base): what it was made against and the blobs it does not carry. */
  delta?: BundleDelta
}

/** What a delta's base is: an earlier bundle (or its bundle.json, or a lockfile), or an inventory taken inside. */
export type DeltaBaseKind = 'bundle' | 'lockfile' | 'registry-inventory' | 'runtime-inventory'

/**
 * A delta bundle's record (bundle.json `delta`): the layer blobs its images need but it does not carry, because the
 * base holds them. Manifests, indexes and configs are always carried (docker load needs the config).
 */
export interface BundleDelta {
  base: {kind: DeltaBaseKind; name: string; sha256?: string}
  /** Where the delta can go: `push` (a registry holding the base), `load` (a node's runtime holding it), or both. */
  for: Array<'push' | 'load'>
  /** Bytes the delta does not carry (the sum of `relies` sizes). */
  savedBytes: number
  /** The blobs the delta relies on, sorted by digest, with the images (and their platform) that need each. */
  relies: ReliedBlob[]
}

export interface ReliedBlob {
  digest: Digest
  size: number
  mediaType: string
  /** `chainId`: docker's layer ChainID up to this layer in that image (docker load skips a layer whose chain exists). */
  usedBy: Array<{image: string; platform: string; chainId: string}>
}
