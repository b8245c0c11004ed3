/**
 * THE walker of a manifest tree: index → manifests (→ nested index, up to MAX_INDEX_DEPTH) → config and layers.
 * verify, the serve catalog, push, load, inspect and create's planning all read image trees through it, so they
 * share one nesting limit and one set of size and media-type rules (manifest.ts). It reads manifests through a
 * function, so any source (a registry, a bundle, the cache) can be walked; it never reads a blob's bytes.
 */
import type {Digest} from './digest.js'
import {formatPlatform} from './platform.js'
import {checkManifest, descriptorProblem, isManifestProblem, MAX_INDEX_DEPTH, MAX_MANIFEST_BYTES, type CheckedManifest, type ManifestProblem} from './manifest.js'
import {isImageManifestMediaType, isIndexMediaType, SCHEMA1_MEDIA_TYPES} from './media-types.js'
import type {Descriptor, ImageIndex, ImageManifest, RawManifest} from './types.js'

/** One manifest or index of a tree, checked. */
export interface TreeNode {
  /** The descriptor that led here (an index entry carries the platform); the root's is made from what was read. */
  descriptor: Descriptor
  /** Bytes as stored; `mediaType` is the content's own. */
  raw: RawManifest
  /** `os/arch[/variant]` as the parent index lists it. */
  platform?: string
  /** 0 for the root. */
  depth: number
  kind: 'index' | 'manifest'
  index?: ImageIndex
  manifest?: ImageManifest
  /** index: the children walked (in index order). */
  children: TreeNode[]
  /** index: children selected but not held by the source (a sparse index: platforms left out of a bundle). */
  absent: Descriptor[]
  /** manifest: config then layers that the source holds or whose presence was not asked about. */
  blobs: Descriptor[]
  /** manifest: foreign (non-distributable) layers with URLs that the source does not hold; clients fetch them. */
  foreign: Descriptor[]
}

export interface WalkSource {
  /**
   * The bytes of the manifest or index `desc` names, or undefined when the source does not hold it. The walker
   * checks digest, size and media type itself; a source need not.
   */
  readManifest(desc: Descriptor): Promise<Buffer | undefined>
  /**
   * The size of a blob the source holds, undefined when it holds none. Omit for a source that cannot tell cheaply (a
   * registry): blobs are then not checked here but verified when their bytes flow.
   */
  blobSize?(digest: Digest): number | undefined
}

export interface WalkOptions {
  /** Names the image in every problem's message (`registry.k8s.io/pause:3.10`). */
  what: string
  /**
   * Which entries of an index to walk (default: all of them). Entries not chosen are neither read nor reported;
   * chosen ones the source lacks become `absent`.
   */
  select?(index: ImageIndex, node: TreeNode): Descriptor[]
  /**
   * A broken rule. Throw to stop the walk (the default throws `toError(problem)`); return to go on without that part
   * of the tree (verify reports every problem).
   */
  onProblem?(problem: ManifestProblem): void
  /** The error thrown by the default onProblem. */
  toError?(problem: ManifestProblem): Error
  /** Read the children of an index in parallel (small reads; order is kept). Default true. */
  parallel?: boolean
  /** Each node once it is checked (a manifest's blobs known), before its siblings are done: lets downloads start early. */
  onNode?(node: TreeNode): void
}

/** Walk from a descriptor (the root must be held by the source). Resolves to undefined only when onProblem returned. */
export async function walkTree(source: WalkSource, root: Descriptor, options: WalkOptions): Promise<TreeNode | undefined> {
  // The root's descriptor comes from outside any checked manifest (index.json, bundle.json, a lockfile).
  const problem = descriptorProblem(root, options.what)
  if (problem) return fail(options, problem)
  return walkNode(source, root, 0, true, options)
}

/**
 * Walk from a root manifest already read (a registry's answer for a tag: its digest was not known before). The root's
 * digest is the hash of its bytes; its labelled media type comes from `raw.mediaType`.
 */
export async function walkFromRaw(source: WalkSource, raw: RawManifest, options: WalkOptions): Promise<TreeNode | undefined> {
  const root: Descriptor = {digest: raw.digest, size: raw.bytes.length, mediaType: raw.mediaType}
  // A Content-Type is only a hint (`application/json`, `text/plain` from a static server): the content decides.
  const labelled = isIndexMediaType(raw.mediaType) || isImageManifestMediaType(raw.mediaType) || SCHEMA1_MEDIA_TYPES.has(raw.mediaType)
  return visit(source, root, raw.bytes, 0, options, labelled ? raw.mediaType : undefined)
}

function fail(options: WalkOptions, problem: ManifestProblem): undefined {
  if (options.onProblem) {
    options.onProblem(problem)
    return undefined
  }
  throw options.toError ? options.toError(problem) : new Error(problem.message)
}

async function walkNode(source: WalkSource, desc: Descriptor, depth: number, required: boolean, options: WalkOptions): Promise<TreeNode | undefined> {
  if (desc.size > MAX_MANIFEST_BYTES) {
    return fail(options, {kind: 'MALFORMED', digest: desc.digest, message: `${options.what}: manifest ${desc.digest} is ${desc.size} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`})
  }
  const bytes = await source.readManifest(desc)
  if (bytes === undefined) {
    if (required) return fail(options, {kind: 'MISSING', digest: desc.digest, message: `${options.what}: manifest ${desc.digest} is missing`})
    return undefined
  }
  return visit(source, desc, bytes, depth, options)
}

async function visit(source: WalkSource, desc: Descriptor, bytes: Buffer, depth: number, options: WalkOptions, label: string | undefined = desc.mediaType): Promise<TreeNode | undefined> {
  const what = desc.platform ? `${options.what} (${formatPlatform(desc.platform)})` : options.what
  const checked: CheckedManifest | ManifestProblem = checkManifest(bytes, {digest: desc.digest, size: desc.size, mediaType: label || undefined}, what)
  if (isManifestProblem(checked)) return fail(options, checked)
  const node: TreeNode = {
    descriptor: desc,
    raw: checked.raw,
    ...(desc.platform ? {platform: formatPlatform(desc.platform)} : {}),
    depth,
    kind: checked.kind,
    children: [],
    absent: [],
    blobs: [],
    foreign: [],
  }
  if (checked.kind === 'index') {
    node.index = checked.index
    if (depth >= MAX_INDEX_DEPTH) {
      return fail(options, {kind: 'MALFORMED', digest: desc.digest, message: `${what}: indexes nested more than ${MAX_INDEX_DEPTH} deep at ${desc.digest}`})
    }
    const chosen = options.select ? options.select(checked.index, node) : checked.index.manifests
    const walkChild = async (child: Descriptor): Promise<TreeNode | 'absent' | undefined> => {
      if (child.size > MAX_MANIFEST_BYTES) return fail(options, {kind: 'MALFORMED', digest: child.digest, message: `${what}: manifest ${child.digest} is ${child.size} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`})
      const bytes = await source.readManifest(child)
      if (bytes === undefined) return 'absent'
      return visit(source, child, bytes, depth + 1, options)
    }
    const results = options.parallel === false ? await sequential(chosen, walkChild) : await Promise.all(chosen.map(walkChild))
    results.forEach((result, i) => {
      if (result === 'absent') node.absent.push(chosen[i])
      else if (result) node.children.push(result)
    })
    if (chosen.length > 0 && node.children.length === 0 && node.absent.length === chosen.length) {
      return fail(options, {kind: 'MISSING', digest: desc.digest, message: `${what}: none of the manifests of index ${desc.digest} is present`})
    }
    options.onNode?.(node)
    return node
  }
  node.manifest = checked.manifest
  for (const blob of [checked.manifest.config, ...checked.manifest.layers]) {
    const held = source.blobSize ? source.blobSize(blob.digest) : blob.size
    if (held === undefined) {
      // Non-distributable layers are fetched by clients from their URLs; the source need not hold them.
      if (blob.urls?.length) {
        node.foreign.push(blob)
        continue
      }
      fail(options, {kind: 'MISSING', digest: blob.digest, message: `${what}: blob ${blob.digest} is missing`})
      continue
    }
    if (held !== blob.size) {
      fail(options, {kind: 'SIZE', digest: blob.digest, message: `${what}: blob ${blob.digest} is ${held} bytes, the manifest says ${blob.size}`})
      continue
    }
    node.blobs.push(blob)
  }
  options.onNode?.(node)
  return node
}

async function sequential<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (const item of items) out.push(await fn(item))
  return out
}

/** Every node of a tree, depth first, parents before children. */
export function* treeNodes(node: TreeNode): Generator<TreeNode> {
  yield node
  for (const child of node.children) yield* treeNodes(child)
}

/** True when some index of the tree lists manifests the source does not hold. */
export function isSparse(node: TreeNode): boolean {
  return node.absent.length > 0 || node.children.some(isSparse)
}

/** The manifests the tree's indexes list that the source does not hold (isSparse: any at all). */
export function absentManifests(node: TreeNode): Descriptor[] {
  return [...treeNodes(node)].flatMap((n) => n.absent)
}

/** The platforms of the image manifests in a tree (for messages). */
export function treePlatforms(node: TreeNode): string[] {
  return [...treeNodes(node)].filter((n) => n.kind === 'manifest' && n.depth > 0).map((n) => n.platform ?? '?')
}
