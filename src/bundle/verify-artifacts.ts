/**
 * `verify` for the publishers' artifacts a bundle carries (layout.ts BundleArtifact): bundle.json names them, not
 * index.json, so verify walks each one from there with the one walker (oci/walk.ts) through the bundle: manifest
 * present, digest, size and media type right, config and layers present with their sizes (their contents are hashed
 * with every other blob), each about the image it is recorded under, and as bundle.json describes it. What they
 * reference counts as referenced (no "blob not referenced by any image").
 */
import {isDigest, type Digest} from '../oci/digest.js'
import type {ManifestProblem} from '../oci/manifest.js'
import {walkTree, type WalkSource} from '../oci/walk.js'
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
  const node = await walkTree(c.source, {digest: a.digest, size: a.size, mediaType: a.mediaType}, {what, onProblem, select: () => []})
  if (!node) return
  if (node.kind !== 'manifest') return wrong(`${what} is an index; bundle.json records image manifests only`)
  const {config, layers, subject} = node.manifest!
  for (const blob of [config, ...layers]) c.mark(blob.digest)
  const listed = [a.config, ...(a.layers ?? [])].map((b) => `${b?.digest}/${b?.size}`).join(',')
  if (listed !== [config, ...layers].map((b) => `${b.digest}/${b.size}`).join(',')) wrong(`${what}: bundle.json lists other blobs than its manifest`)
  if (a.kind === 'referrer' && subject?.digest !== a.subject) wrong(`${what}: its manifest's subject is ${subject?.digest ?? 'missing'}, bundle.json says ${a.subject}`)

  function wrong(message: string): void {
    c.add('METADATA', message, METADATA_FILE)
  }
}
