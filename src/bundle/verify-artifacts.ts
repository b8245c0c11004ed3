/**
 * `verify` for the publishers' artifacts a bundle carries (layout.ts BundleArtifact): bundle.json names them, not
 * index.json, so verify walks each one from there with the one walker (oci/walk.ts) through the bundle: manifest
 * present, digest, size and media type right (an index: every manifest under it too), config and layers present
 * with their sizes (their contents are hashed with every other blob), each about the image it is recorded under, and
 * as bundle.json describes it. What they reference counts as referenced (no "blob not referenced by any image").
 */
import {isDigest, type Digest} from '../oci/digest.js'
import type {ManifestProblem} from '../oci/manifest.js'
import {formatPlatform} from '../oci/platform.js'
import {absentManifests, treeNodes, walkTree, type WalkSource} from '../oci/walk.js'
import {blobPath, METADATA_FILE, type BundleArtifact, type BundleMetadata} from './layout.js'

export interface ArtifactCheck {
  meta: BundleMetadata | undefined
  source: WalkSource
  /** Blob entries whose contents were hashed (a DIGEST problem there is already reported). */
  hashed: ReadonlyMap<string, unknown>
  mark(digest: Digest): void
  add(kind: string, message: string, entry?: string): void
}

const KIND: Record<ManifestProblem['kind'], string> = {MISSING: 'MISSING', DIGEST: 'DIGEST', SIZE: 'SIZE', MALFORMED: 'MANIFEST', MEDIA_TYPE: 'MANIFEST'}

export async function checkArtifacts({meta, source, hashed, mark, add}: ArtifactCheck): Promise<void> {
  // create --trusted-root: the Sigstore trusted root, a blob bundle.json names (its content is hashed with the others).
  if (meta?.trustedRoot !== undefined) {
    const root = meta.trustedRoot
    if (!isDigest(root?.digest) || typeof root.size !== 'number') add('METADATA', 'bundle.json: its trustedRoot is not a descriptor', METADATA_FILE)
    else {
      mark(root.digest)
      const size = source.blobSize?.(root.digest)
      if (source.blobSize && size === undefined) add('MISSING', `the trusted root ${root.digest} that bundle.json names is missing`, blobPath(root.digest))
      else if (size !== undefined && size !== root.size) add('SIZE', `the trusted root ${root.digest} is ${size} bytes, bundle.json says ${root.size}`, blobPath(root.digest))
    }
  }
  for (const image of meta?.images ?? []) {
    if (image.artifacts !== undefined && !Array.isArray(image.artifacts)) {
      add('METADATA', `bundle.json: the artifacts of ${image.name} are not a list`, METADATA_FILE)
      continue
    }
    const subjects = new Set<string>([image.digest, ...(image.platforms ?? []).map((p) => p.digest)])
    for (const artifact of image.artifacts ?? []) await checkOne(image.name, subjects, artifact, {source, hashed, mark, add})
  }
}

async function checkOne(image: string, subjects: Set<string>, a: BundleArtifact, c: Omit<ArtifactCheck, 'meta'>): Promise<void> {
  const what = `${image}: ${a.kind} ${a.tag ?? a.digest}`
  if (!subjects.has(a.subject)) wrong(`${what} is about ${a.subject}, which is neither the image nor one of its carried platforms`)
  if (!isDigest(a.digest)) return wrong(`${what} has an invalid digest`)
  c.mark(a.digest)
  const onProblem = (problem: ManifestProblem): void => {
    const entry = problem.digest && isDigest(problem.digest) ? blobPath(problem.digest) : undefined
    if (problem.kind === 'DIGEST' && entry && c.hashed.has(entry)) return
    c.add(KIND[problem.kind], problem.message, entry)
  }
  const node = await walkTree(c.source, {digest: a.digest, size: a.size, mediaType: a.mediaType}, {what, onProblem})
  if (!node) return
  for (const missing of absentManifests(node)) c.add('MISSING', `${what}: manifest ${missing.digest} (${missing.platform ? formatPlatform(missing.platform) : 'no platform'}) is missing`, blobPath(missing.digest))
  // What the tree references counts as referenced; bundle.json must describe the same tree (contract.ts lists its blobs).
  const nodes = [...treeNodes(node)]
  for (const n of nodes) for (const blob of [n.descriptor, ...(n.manifest ? [n.manifest.config, ...n.manifest.layers] : [])]) c.mark(blob.digest)
  const described = (m: {digest: string; size: number; config?: {digest: string; size: number}; layers?: Array<{digest: string; size: number}>}): string =>
    [m, ...(m.config ? [m.config] : []), ...(m.layers ?? [])].map((b) => `${b?.digest}/${b?.size}`).join(',')
  const recorded = [a, ...(Array.isArray(a.manifests) ? a.manifests : [])].map(described).join(' ')
  const walked = nodes.map((n) => described({digest: n.raw.digest, size: n.raw.bytes.length, ...(n.manifest ? {config: n.manifest.config, layers: n.manifest.layers} : {})})).join(' ')
  if (recorded !== walked) wrong(`${what}: bundle.json lists other ${node.kind === 'index' ? 'manifests or ' : ''}blobs than its ${node.kind}`)
  const subject = (node.manifest ?? node.index)?.subject
  if (a.kind === 'referrer' && subject?.digest !== a.subject) wrong(`${what}: its ${node.kind}'s subject is ${subject?.digest ?? 'missing'}, bundle.json says ${a.subject}`)

  function wrong(message: string): void {
    c.add('METADATA', message, METADATA_FILE)
  }
}
