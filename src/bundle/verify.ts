/**
 * Offline verification of a bundle, streaming: structure (the tar index refuses traversal, links, duplicates,
 * truncation), every blob's digest and size, index.json → indexes → manifests → configs/layers present, the docker
 * manifest.json and its per-platform fragments consistent with the images, bundle.json consistent with index.json,
 * and SHA256SUMS. Every problem found is reported, not just the first. serve/push/load call `verifyBundle` first.
 */
import {KubeferryError, isKubeferryError} from '../oci/errors.js'
import {digestHex, digestOfStream, isDigest, sha256Digest, type Digest} from '../oci/digest.js'
import type {ManifestProblem} from '../oci/manifest.js'
import type {ImageIndex, ImageManifest} from '../oci/types.js'
import {treeNodes, walkTree, type TreeNode} from '../oci/walk.js'
import {
  ANNOTATION_CONTAINERD_NAME,
  ANNOTATION_REF_NAME,
  BLOBS_DIR,
  blobPath,
  INDEX_FILE,
  METADATA_FILE,
  OCI_LAYOUT_FILE,
  type BundleDelta,
  type BundleMetadata,
} from './layout.js'
import {BundleReader} from './reader.js'
import {BundleSource} from './source.js'
import {indexDescriptorMediaType} from './oci-index.js'
import {checkRequiredFiles} from './verify-files.js'
import {reliedOn} from './contract.js'
import {checkArtifacts} from './verify-artifacts.js'
import {PartedBytes} from './parted-bytes.js'
import {hashParts, partProblems} from './parts-check.js'
import {isPartedPath, partsCheckCommand} from './parts.js'
import {parsePartPath} from './parts-naming.js'
import {basename} from 'node:path'

export interface VerifyProblem {
  /** Machine-readable kind: PARTS, STRUCTURE, MISSING, DIGEST, SIZE, INDEX, MANIFEST, DOCKER, METADATA, CHECKSUMS. */
  kind: string
  message: string
  /** The entry concerned, when there is one. */
  entry?: string
}

export interface VerifyOptions {
  /** Check sizes and references only, not blob contents (fast). */
  quick?: boolean
  /**
   * A bundle in parts with its NAME.parts.sha256: hash every part against it even with `quick` (push and load, whose
   * use must not start on a damaged part). Without `quick` the parts are always hashed.
   */
  checkParts?: boolean
  /** Parallel blob hashing (default 2). */
  concurrency?: number
  onProgress?: (bytesDone: number, bytesTotal: number) => void
}

export interface VerifyResult {
  ok: boolean
  path: string
  problems: VerifyProblem[]
  images: number
  blobs: number
  bytesHashed: number
  /** A delta bundle: what it was made against and the layers it relies on (not in it, not checked here). */
  delta?: {base: BundleDelta['base']; for: BundleDelta['for']; reliedBlobs: number; reliedBytes: number; images: string[]}
}

function parse<T>(bytes: Buffer): T | undefined {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch {
    return undefined
  }
}

export async function verifyBundle(path: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const problems: VerifyProblem[] = []
  const add = (kind: string, message: string, entry?: string): void => {
    problems.push({kind, message, ...(entry ? {entry} : {})})
  }
  const result = (extra: Partial<VerifyResult> = {}): VerifyResult => ({ok: problems.length === 0, path, problems, images: 0, blobs: 0, bytesHashed: 0, ...extra})

  let reader: BundleReader
  try {
    reader = await BundleReader.open(path)
  } catch (error) {
    if (isKubeferryError(error) && error.code === 'IO') throw error
    add('STRUCTURE', isKubeferryError(error) ? error.message : (error as Error).message)
    return result()
  }
  const entries = reader.index.entries
  // A bundle in parts: each part against NAME.parts.sha256 first, so a damaged part is named as such.
  const parted = reader.index.bytes instanceof PartedBytes ? reader.index.bytes : undefined
  if (parted?.parts.listed && (!options.quick || options.checkParts)) {
    for (const problem of partProblems(parted.parts, await hashParts(parted.parts))) add('PARTS', problem.message, problem.part)
  }
  /** Where an entry's bytes are when the bundle is in parts (" (in part k8s.tar.002)"), else nothing. */
  const inParts = (name: string): string => {
    const entry = entries.get(name)
    return parted && entry ? ` (in part${parted.partsOf(entry.offset, entry.offset + entry.size).length > 1 ? 's' : ''} ${parted.partsOf(entry.offset, entry.offset + entry.size).join(', ')})` : ''
  }
  const blobNames = [...entries.keys()].filter((n) => n.startsWith(BLOBS_DIR))

  const readSmall = async (name: string): Promise<Buffer | undefined> => {
    if (!entries.has(name)) {
      add('MISSING', `"${name}" is missing`, name)
      return undefined
    }
    try {
      return await reader.readFile(name)
    } catch (error) {
      add('STRUCTURE', isKubeferryError(error) ? error.message : String(error), name)
      return undefined
    }
  }

  // --- blobs: name = content ---
  const hashes = new Map<string, Digest>() // entry → actual digest
  let bytesHashed = 0
  const totalBytes = blobNames.reduce((n, name) => n + entries.get(name)!.size, 0)
  for (const name of blobNames) {
    const hex = name.slice(BLOBS_DIR.length)
    if (!/^[a-f0-9]{64}$/.test(hex)) add('STRUCTURE', `"${name}" is not named by a sha256 digest`, name)
  }
  if (!options.quick) {
    const queue = blobNames.filter((n) => /^[a-f0-9]{64}$/.test(n.slice(BLOBS_DIR.length)))
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < queue.length) {
        const name = queue[next++]
        const entry = entries.get(name)!
        const {digest: actual} = await digestOfStream(reader.openEntry(entry) as AsyncIterable<Buffer>, (n) => {
          bytesHashed += n
          options.onProgress?.(bytesHashed, totalBytes)
        })
        hashes.set(name, actual)
        if (actual !== `sha256:${name.slice(BLOBS_DIR.length)}`) add('DIGEST', `blob "${name}" has content ${actual} (corrupt or tampered)${inParts(name)}`, name)
      }
    }
    await Promise.all(Array.from({length: Math.max(1, options.concurrency ?? 2)}, worker))
  }

  // --- OCI layout ---
  const layout = await readSmall(OCI_LAYOUT_FILE)
  if (layout && parse<{imageLayoutVersion?: string}>(layout)?.imageLayoutVersion !== '1.0.0') add('INDEX', `"${OCI_LAYOUT_FILE}" does not declare imageLayoutVersion 1.0.0`, OCI_LAYOUT_FILE)
  const indexBytes = await readSmall(INDEX_FILE)
  const index = indexBytes ? parse<ImageIndex>(indexBytes) : undefined
  if (indexBytes && !index) add('INDEX', `"${INDEX_FILE}" is not valid JSON`, INDEX_FILE)

  const metaBytes = await readSmall(METADATA_FILE)
  const meta = metaBytes ? parse<BundleMetadata>(metaBytes) : undefined
  if (metaBytes && !meta) add('METADATA', `"${METADATA_FILE}" is not valid JSON`, METADATA_FILE)

  // --- index.json → manifests → blobs ---
  const referenced = new Set<string>()
  const mark = (digest: Digest): void => {
    referenced.add(`${BLOBS_DIR}${digestHex(digest)}`)
  }
  const manifestsByImage = new Map<string, Map<string, ImageManifest>>() // image name → platform manifest digest → manifest
  const source = new BundleSource(reader, meta ? reliedOn(meta) : undefined).walkSource() // a delta: its relied-on layers are held by the runtime or registry
  for (const [i, desc] of (index?.manifests ?? []).entries()) {
    const name = desc.annotations?.[ANNOTATION_CONTAINERD_NAME] ?? desc.annotations?.[ANNOTATION_REF_NAME]
    const what = `index.json entry ${i + 1}${name ? ` (${name})` : ''}`
    if (!name) add('INDEX', `${what} has no ${ANNOTATION_CONTAINERD_NAME} annotation`, INDEX_FILE)
    const manifests = new Map<string, ImageManifest>()
    manifestsByImage.set(name ?? `#${i}`, manifests)
    mark(desc.digest)
    // The one walker (oci/walk.ts) with verify's wording: every problem is a line of the report, the walk goes on.
    const onProblem = (problem: ManifestProblem): void => {
      const entry = problem.digest && isDigest(problem.digest) ? blobPath(problem.digest) : undefined
      // A manifest whose bytes were hashed above is already reported as DIGEST once.
      if (problem.kind === 'DIGEST' && entry && hashes.has(entry)) return
      const kind = problem.kind === 'MEDIA_TYPE' && problem.digest === desc.digest ? 'INDEX' : VERIFY_KIND[problem.kind]
      add(kind, problem.message, kind === 'INDEX' ? INDEX_FILE : entry)
    }
    let tree: TreeNode | undefined
    try {
      tree = await walkTree(source, desc, {what, onProblem})
    } catch (error) {
      add('STRUCTURE', isKubeferryError(error) ? error.message : String(error), isDigest(desc.digest) ? blobPath(desc.digest) : INDEX_FILE)
    }
    for (const node of tree ? treeNodes(tree) : []) {
      mark(node.raw.digest)
      // What an index lists and a manifest references is referenced, even where the walk found it broken.
      for (const child of node.index?.manifests ?? []) mark(child.digest)
      if (!node.manifest) continue
      manifests.set(node.raw.digest, node.manifest)
      for (const blob of [node.manifest.config, ...node.manifest.layers]) mark(blob.digest)
    }
  }
  // The publishers' artifacts: named by bundle.json only (verify-artifacts.ts).
  await checkArtifacts({meta, source, hashed: hashes, mark, add})
  for (const name of blobNames) {
    if (!referenced.has(name)) add('STRUCTURE', `blob "${name}" is not referenced by any image`, name)
  }

  // --- bundle.json ↔ index.json ---
  if (meta && index) {
    const indexed = new Map((index.manifests ?? []).map((d) => [d.annotations?.[ANNOTATION_CONTAINERD_NAME] ?? '', d]))
    for (const image of meta.images ?? []) {
      const d = indexed.get(image.name)
      if (!d) add('METADATA', `bundle.json lists ${image.name}, index.json does not`, METADATA_FILE)
      else if (d.digest !== image.digest) add('METADATA', `bundle.json says ${image.name} is ${image.digest}, index.json says ${d.digest}`, METADATA_FILE)
      else if (d.mediaType !== indexDescriptorMediaType(image.mediaType)) add('METADATA', `index.json gives ${image.name} media type ${d.mediaType}, bundle.json ${image.mediaType}`, INDEX_FILE)
      const manifests = manifestsByImage.get(image.name)
      for (const p of image.platforms ?? []) {
        if (!entries.has(`${BLOBS_DIR}${digestHex(p.digest)}`)) add('MISSING', `${image.name} ${p.platform}: manifest ${p.digest} is missing`)
        else if (manifests && !manifests.has(p.digest)) add('METADATA', `${image.name} ${p.platform}: manifest ${p.digest} is not reachable from index.json`)
      }
    }
    const listed = new Set((meta.images ?? []).map((i) => i.name))
    for (const name of indexed.keys()) if (!listed.has(name)) add('METADATA', `index.json lists ${name || '(unnamed)'}, bundle.json does not`, INDEX_FILE)
  }

  // --- the rest of the contract's required files: manifest.json, the docker fragments, SHA256SUMS (verify-files.ts) ---
  await checkRequiredFiles({reader, meta, blobHashes: hashes, quick: options.quick ?? false, add, readSmall, readAlready: [OCI_LAYOUT_FILE, INDEX_FILE, METADATA_FILE]})

  const delta = meta?.delta
  const relying = delta ? [...new Set(delta.relies.flatMap((b) => b.usedBy.map((u) => u.image)))].sort() : []
  return result({images: index?.manifests?.length ?? 0, blobs: blobNames.length, bytesHashed, ...(delta ? {delta: {base: delta.base, for: delta.for, reliedBlobs: delta.relies.length, reliedBytes: delta.savedBytes, images: relying}} : {})})
}

/** The walker's problem kinds in verify's words. */
const VERIFY_KIND: Record<ManifestProblem['kind'], string> = {MISSING: 'MISSING', DIGEST: 'DIGEST', SIZE: 'SIZE', MALFORMED: 'MANIFEST', MEDIA_TYPE: 'MANIFEST'}

/** Throw a KubeferryError summarising the problems when the bundle does not verify (for serve/push/load). */
export async function assertBundleValid(path: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const result = await verifyBundle(path, options)
  if (!result.ok) {
    const first = result.problems[0]
    const more = result.problems.length > 1 ? ` (and ${result.problems.length - 1} more problem${result.problems.length > 2 ? 's' : ''})` : ''
    const what = first.message.startsWith(`${path}: `) ? first.message.slice(path.length + 2) : first.message
    const parts = {bundlePath: parsePartPath(path)?.bundlePath ?? path}
    const hint =
      first.kind === 'PARTS' && first.entry
        ? `copy ${basename(first.entry)} again from its source (\`${partsCheckCommand(parts)}\` checks every part); \`kubeferry verify ${path}\` lists every problem`
        : isPartedPath(path)
          ? `find the damaged part with \`${partsCheckCommand(parts)}\` and copy it again from its source; \`kubeferry verify ${path}\` lists every problem`
        : `copy the bundle again from its source (compare its .sha256) or rebuild it with kubeferry create; \`kubeferry verify ${path}\` lists every problem`
    throw new KubeferryError('BUNDLE_INVALID', `${path} does not verify: ${what}${more}`, {hint})
  }
  return result
}
