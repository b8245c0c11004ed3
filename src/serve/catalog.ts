/**
 * What `serve` answers, built once at start from one or more bundles: repositories → tags, and per repository the
 * manifests and blobs it may hand out (a digest is only served under a repository whose images reference it, as a
 * real registry does). Nothing but small maps lives in memory; bytes are read from the tars by offset on demand.
 *
 * Structure is always checked here (every manifest is read and hashed, every blob it references must exist with the
 * right size); blob CONTENT is hashed either by `verifyBundle` before this runs or lazily on first serve.
 *
 * Conflicts: bundles are taken in the order given and the FIRST one wins a `repository:tag` (a warning names the
 * loser). The same path under different upstream registries (`k8s.gcr.io/pause` vs `registry.k8s.io/pause`) is kept
 * apart by the `ns` query parameter containerd sends to mirrors; without it the first one wins.
 */
import {KubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import type {Descriptor, ImageIndex} from '../oci/types.js'
import {treeNodes, walkTree} from '../oci/walk.js'
import {BundleSource} from '../bundle/source.js'
import {reliedOn} from '../bundle/contract.js'
import {ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, INDEX_FILE, METADATA_FILE, type BundleArtifact} from '../bundle/layout.js'
import type {BundleReader} from '../bundle/reader.js'
import type {TarEntry} from '../bundle/tar-index.js'
import {parseReference, type Reference} from '../oci/reference.js'
import {normalizePrefix, targetRepositories, type UpstreamRepository} from '../registry/names.js'
import {addReferrer, referrerDescriptor} from './artifacts.js'

export type BlobState = 'verified' | 'unverified' | 'bad'

/** A blob or manifest stored in a bundle. */
export interface StoredContent {
  digest: Digest
  size: number
  reader: BundleReader
  entry: TarEntry
  state: BlobState
  /** Set for manifests and indexes: the exact media type they are served with. */
  mediaType?: string
}

export interface TagTarget {
  digest: Digest
  /** Upstream registry of the image, e.g. `registry.k8s.io`. */
  registry: string
  /** Full upstream reference as in the bundle. */
  image: string
  /** True when this name is a kubeadm alias (`coredns` for `coredns/coredns`), which loses to a real name. */
  alias: boolean
}

export interface ServedRepository {
  name: string
  tags: Map<string, TagTarget[]>
  manifests: Set<Digest>
  blobs: Set<Digest>
  /** OCI 1.1 referrers by subject digest (serve/artifacts.ts); absent when the bundles carry none. */
  referrers?: Map<Digest, Descriptor[]>
}

export interface ServedImage {
  /** Full upstream reference (`registry.k8s.io/pause:3.10`). */
  image: string
  registry: string
  repository: string
  tag?: string
  digest: Digest
  mediaType: string
  /** Repository names this image is answered under. */
  served: string[]
  bundle: string
}

export interface CatalogOptions {
  /** Also answer every image under this path (`k8s` → `k8s/pause`). */
  prefix?: string
  /** Blobs whose content was already hashed (by verifyBundle) start as verified. */
  contentVerified: boolean
}

/** The bundle's images: from bundle.json when present (true media types), else from index.json annotations. */
async function topLevelImages(reader: BundleReader): Promise<Array<{name: string; descriptor: Descriptor}>> {
  if (reader.has(METADATA_FILE)) {
    const meta = await reader.metadata()
    if (!meta || !Array.isArray(meta.images)) throw invalid(reader.path, `${METADATA_FILE} has no images list`)
    return meta.images.map((image) => ({name: image.name, descriptor: {digest: image.digest, size: image.size, mediaType: image.mediaType}}))
  }
  const index = await reader.readJson<ImageIndex>(INDEX_FILE)
  if (!index || !Array.isArray(index.manifests)) throw invalid(reader.path, `${INDEX_FILE} has no manifests list`)
  return index.manifests.map((descriptor) => {
    const name = descriptor.annotations?.[ANNOTATION_CONTAINERD_NAME] ?? descriptor.annotations?.[ANNOTATION_REF_NAME]
    if (!name) throw invalid(reader.path, `an ${INDEX_FILE} entry (${descriptor.digest}) has no image name annotation`)
    return {name, descriptor}
  })
}

function invalid(path: string, why: string): KubeferryError {
  return new KubeferryError('BUNDLE_INVALID', `${path}: cannot serve this bundle: ${why}`, {
    hint: 'run `kubeferry verify` on it, then rebuild or copy it again',
  })
}

export class Catalog {
  readonly repositories = new Map<string, ServedRepository>()
  readonly contents = new Map<Digest, StoredContent>()
  readonly images: ServedImage[] = []
  readonly warnings: string[] = []
  private sortedNames: string[] | undefined
  /** A delta's relied-on layers not yet found in any bundle added: the bundle that needs each. */
  private readonly relying = new Map<Digest, string>()

  constructor(readonly options: CatalogOptions) {}

  /**
   * Add every image of one bundle. Bundles added earlier win conflicts. Names and TRUE media types come from
   * bundle.json (index.json gives Docker-typed content OCI types for skopeo's sake); a plain OCI layout without
   * bundle.json falls back to index.json and the media type each manifest declares.
   */
  async addBundle(reader: BundleReader): Promise<void> {
    const meta = reader.has(METADATA_FILE) ? await reader.metadata() : undefined
    const carried = Array.isArray(meta?.images) ? meta.images : [] // for the publishers' artifacts, if any
    for (const {name, descriptor} of await topLevelImages(reader)) {
      let ref: Reference
      try {
        ref = parseReference(name, {defaultTag: false})
      } catch {
        throw invalid(reader.path, `invalid image name "${name}"`)
      }
      const reachable = {manifests: new Set<Digest>(), blobs: new Set<Digest>()}
      await this.addManifestTree(reader, descriptor, name, reachable)
      const names = this.addImage(reader, ref, name, {...descriptor, mediaType: this.contents.get(descriptor.digest)?.mediaType ?? descriptor.mediaType}, reachable)
      await this.addArtifacts(reader, ref, name, names, carried.find((i) => i.name === name)?.artifacts ?? [])
    }
    this.sortedNames = undefined
  }

  private addImage(reader: BundleReader, ref: Reference, name: string, descriptor: Descriptor, reachable: {manifests: Set<Digest>; blobs: Set<Digest>}): string[] {
    const upstream: UpstreamRepository = {registry: ref.registry, repository: ref.repository}
    const names = [...targetRepositories(upstream, {})]
    const prefix = normalizePrefix(this.options.prefix)
    if (prefix) names.push(...targetRepositories(upstream, {prefix}))
    const mainNames = new Set([targetRepositories(upstream, {})[0], prefix ? targetRepositories(upstream, {prefix})[0] : ''])
    const tag = ref.tag
    for (const repoName of names) {
      let repo = this.repositories.get(repoName)
      if (!repo) {
        repo = {name: repoName, tags: new Map(), manifests: new Set(), blobs: new Set()}
        this.repositories.set(repoName, repo)
      }
      for (const d of reachable.manifests) repo.manifests.add(d)
      for (const d of reachable.blobs) repo.blobs.add(d)
      if (!tag) continue
      const target: TagTarget = {digest: descriptor.digest, registry: ref.registry, image: name, alias: !mainNames.has(repoName)}
      const targets = repo.tags.get(tag) ?? []
      const rival = targets.find((t) => t.registry === target.registry && t.alias === target.alias)
      if (rival) {
        if (rival.digest !== target.digest) {
          this.warnings.push(`${repoName}:${tag} is ${rival.digest} (${rival.image}, first given) and ${target.digest} in ${reader.path}; serving the first`)
        }
        continue
      }
      // Real names before aliases; among equals, first come first served.
      targets.push(target)
      targets.sort((a, b) => Number(a.alias) - Number(b.alias))
      repo.tags.set(tag, targets)
    }
    this.images.push({image: name, registry: ref.registry, repository: ref.repository, ...(tag ? {tag} : {}), digest: descriptor.digest, mediaType: descriptor.mediaType, served: names, bundle: reader.path})
    return names
  }

  /**
   * The publishers' artifacts of one image (bundle.json): each walked like an image, its manifest and blobs served
   * under the image's repositories, cosign's tags added (an image's own tag of that name wins), referrers listed.
   */
  private async addArtifacts(reader: BundleReader, ref: Reference, name: string, names: string[], artifacts: BundleArtifact[]): Promise<void> {
    for (const a of artifacts) {
      const reachable = {manifests: new Set<Digest>(), blobs: new Set<Digest>()}
      await this.addManifestTree(reader, {digest: a.digest, size: a.size, mediaType: a.mediaType}, `${name} ${a.kind} ${a.tag ?? a.digest}`, reachable)
      for (const repoName of names) {
        const repo = this.repositories.get(repoName)!
        for (const d of reachable.manifests) repo.manifests.add(d)
        for (const d of reachable.blobs) repo.blobs.add(d)
        if (a.tag && !repo.tags.has(a.tag)) repo.tags.set(a.tag, [{digest: a.digest, registry: ref.registry, image: name, alias: false}])
        if (a.kind === 'referrer') addReferrer(repo, a.subject, referrerDescriptor(a))
      }
    }
  }

  private remember(reader: BundleReader, descriptor: Pick<Descriptor, 'digest' | 'size'>, state: BlobState, mediaType?: string): StoredContent {
    const known = this.contents.get(descriptor.digest)
    if (known) return known
    const entry = reader.blobEntry(descriptor.digest)
    if (!entry) throw invalid(reader.path, `blob ${descriptor.digest} is missing`)
    if (entry.size !== descriptor.size) throw invalid(reader.path, `blob ${descriptor.digest} is ${entry.size} bytes, its descriptor says ${descriptor.size}`)
    const content: StoredContent = {digest: descriptor.digest, size: entry.size, reader, entry, state, ...(mediaType ? {mediaType} : {})}
    this.contents.set(descriptor.digest, content)
    return content
  }

  /**
   * Walk one image's tree (walk.ts: the one nesting limit and set of rules) and remember what it may serve: every
   * manifest with the media type its content declares, every blob it references. Foreign layers the bundle does not
   * hold are left to clients; platforms left out of a sparse index are simply not served.
   */
  private async addManifestTree(reader: BundleReader, descriptor: Descriptor, name: string, reachable: {manifests: Set<Digest>; blobs: Set<Digest>}): Promise<void> {
    const relied = reader.has(METADATA_FILE) ? reliedOn(await reader.metadata()) : new Map<Digest, number>()
    const tree = await walkTree(new BundleSource(reader, relied).walkSource(), descriptor, {what: name, toError: (problem) => invalid(reader.path, problem.message)})
    const state: BlobState = this.options.contentVerified ? 'verified' : 'unverified'
    for (const node of treeNodes(tree!)) {
      this.remember(reader, node.descriptor, 'verified', node.raw.mediaType)
      reachable.manifests.add(node.raw.digest)
      for (const blob of node.blobs) {
        reachable.blobs.add(blob.digest)
        // a delta's relied-on layer is served from the bundle that holds it (its base, given too)
        if (!reader.blobEntry(blob.digest) && relied.has(blob.digest)) {
          if (!this.contents.has(blob.digest)) this.relying.set(blob.digest, reader.path)
          continue
        }
        this.remember(reader, blob, state)
        this.relying.delete(blob.digest)
      }
    }
  }

  /** After the last bundle: every layer a delta relies on must be held by one of the bundles given. */
  checkRelied(): void {
    const [digest, path] = [...this.relying].find(([d]) => !this.contents.has(d)) ?? []
    if (digest && path) {
      throw new KubeferryError('BUNDLE_INVALID', `${path}: cannot serve this delta bundle alone: it relies on layer ${digest}, which none of the bundles given holds`, {
        hint: `serve it together with its base: kubeferry serve BASE.tar ${path}`,
      })
    }
  }

  /** Repository names in lexical order (the order `_catalog` pages through). */
  repositoryNames(): string[] {
    this.sortedNames ??= [...this.repositories.keys()].sort()
    return this.sortedNames
  }

  /** The digest a tag points to; `ns` (the upstream registry containerd names) picks among same-path images. */
  resolveTag(repo: ServedRepository, tag: string, ns?: string): TagTarget | undefined {
    const targets = repo.tags.get(tag)
    if (!targets?.length) return undefined
    if (ns) {
      const wanted = ns === 'index.docker.io' || ns === 'registry-1.docker.io' ? 'docker.io' : ns
      const match = targets.find((t) => t.registry === wanted)
      if (match) return match
    }
    return targets[0]
  }
}

