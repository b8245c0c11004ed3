/**
 * containerd as an ImageSink: ONE image from any ImageSource (a registry, a bundle, the blob cache) imported by
 * `ctr images import --platform P -`, reading an OCI image layout tar written on the fly into its stdin: `oci-layout`,
 * the manifests and the chosen platform's blobs under `blobs/sha256/`, then `index.json` naming the image as the
 * bundle writer does (both annotations, the upstream digest of the index or manifest). Nothing is staged on disk and
 * no blob is held in memory: each one streams from the source and is verified here while it flows; its last chunk is
 * held back until its digest matches, and index.json comes last, so a bad blob ends the tar early and ctr, finding it
 * truncated, records no image. `load` still imports the bundle file itself (runtimes read a whole tar fastest).
 */
import {createHash} from 'node:crypto'
import {Readable} from 'node:stream'
import {blobPath, END_OF_ARCHIVE_BYTES, INDEX_FILE, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME} from '../bundle/layout.js'
import {indexDescriptorMediaType} from '../bundle/oci-index.js'
import {fileHeader, paddingFor} from '../bundle/tar-header.js'
import type {Digest} from '../oci/digest.js'
import {isKubeferryError, KubeferryError} from '../oci/errors.js'
import {MediaType} from '../oci/media-types.js'
import {parsePlatform, platformMatches} from '../oci/platform.js'
import type {ImageSink, ImageSource, SourcedImage} from '../oci/source.js'
import type {Descriptor} from '../oci/types.js'
import type {TreeNode} from '../oci/walk.js'
import {parseImageList} from './containerd.js'
import {lastLine, run} from './exec.js'

export interface ContainerdSinkOptions {
  /** argv prefix that runs ctr (`['ctr']`, `['k3s', 'ctr']`); default `ctr` on PATH. */
  ctr?: string[]
  /** containerd's socket (ctr's default when omitted). */
  address?: string
  namespace: string
  /** The one platform imported (`linux/amd64`): only its manifest and blobs are streamed, and ctr is told so. */
  platform: string
  env?: NodeJS.ProcessEnv
}

/** What one write imported. */
export interface ContainerdImport {
  name: string
  /** The digest containerd names the image by: the upstream index's (or single manifest's). */
  digest: Digest
  platform: string
  manifests: number
  blobs: number
  /** Blob bytes streamed from the source. */
  bytes: number
}

/** The manifests (root first) and the distinct blobs of one platform of a tree. */
export interface LayoutParts {
  manifests: TreeNode[]
  blobs: Descriptor[]
}

const tarMtime = 0
/** How long a failed write waits for containerd to drop ctr's partial ingests. */
const SETTLE_MS = 10_000

export class ContainerdSink implements ImageSink<ContainerdImport> {
  constructor(private readonly options: ContainerdSinkOptions) {}

  async write(image: SourcedImage, source: ImageSource, options: {signal?: AbortSignal} = {}): Promise<ContainerdImport> {
    const {platform} = this.options
    const parts = layoutParts(image, platform)
    const counted = {bytes: 0}
    let failure: unknown
    const chunks = layoutTar(image, source, parts, counted, options.signal)
    const input = Readable.from(
      (async function* () {
        try {
          yield* chunks
        } catch (error) {
          failure = error
          throw error
        }
      })(),
      {objectMode: false},
    )
    let result
    try {
      result = await this.ctr(['images', 'import', '--platform', platform, '-'], input)
    } finally {
      input.destroy()
    }
    if (failure !== undefined || result.code !== 0) await this.settle(parts)
    if (failure !== undefined) throw named(image.name, source, failure)
    if (result.code !== 0) {
      throw new KubeferryError('RUNTIME', `${image.name}: ctr images import into containerd (namespace ${this.options.namespace}) failed: ${lastLine(result.stderr) || lastLine(result.stdout)}`, {
        hint: 'check that containerd is running and that ctr can reach its socket (--address); run the same ctr command by hand to see more',
      })
    }
    const digest = image.tree.raw.digest
    const listed = parseImageList((await this.ctr(['images', 'ls'])).stdout).get(image.name)
    if (listed?.digest !== digest) {
      throw new KubeferryError('RUNTIME', `${image.name}: ctr import ended but containerd lists ${listed ? `digest ${listed.digest}` : 'no such image'}, expected ${digest}`, {
        hint: `run \`ctr -n ${this.options.namespace} images ls\` to see what was imported`,
      })
    }
    return {name: image.name, digest, platform, manifests: parts.manifests.length, blobs: parts.blobs.length, bytes: counted.bytes}
  }

  /**
   * After a failed import, wait (briefly, bounded) until containerd has dropped the partial ingests ctr left. ctr
   * ingests each tar entry under the ref `tar-<entry name>` and a later import of the same entry RESUMES such a
   * partial ingest instead of starting over, and commits each entry under the digest of the bytes it got (the entry's
   * name is not checked): an import begun while the bad prefix is still there stores a corrupt layer and fails to
   * unpack (seen with containerd 1.6.20: the partial ingest is gone ~150 ms after ctr exits).
   */
  private async settle(parts: LayoutParts): Promise<void> {
    const refs = new Set([...parts.manifests.map((n) => n.raw.digest), ...parts.blobs.map((b) => b.digest)].map((d) => `tar-${blobPath(d)}`))
    const deadline = Date.now() + SETTLE_MS
    while (Date.now() < deadline) {
      const active = await this.ctr(['content', 'active'])
      if (active.code !== 0 || !active.stdout.split('\n').some((line) => refs.has(line.split(/\s+/)[0]))) return
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  private ctr(args: string[], input?: Readable) {
    const {ctr = ['ctr'], address, namespace, env} = this.options
    return run([...ctr, ...(address ? ['--address', address] : []), '--namespace', namespace, ...args], {...(env ? {env} : {}), ...(input ? {input} : {})})
  }
}

/**
 * The root (index or manifest) and, under an index, the nested indexes and the image manifests of `platform`, with
 * their config and layers once each. Throws, naming the image and what it has, when no manifest is for `platform`.
 */
export function layoutParts(image: SourcedImage, platform: string): LayoutParts {
  const wanted = parsePlatform(platform)
  const manifests: TreeNode[] = []
  const chosen = (node: TreeNode, isRoot: boolean): void => {
    if (node.kind === 'index') {
      manifests.push(node)
      for (const child of node.children) chosen(child, false)
    } else if (isRoot || platformMatches(wanted, node.descriptor.platform)) {
      manifests.push(node)
    }
  }
  chosen(image.tree, true)
  const images = manifests.filter((n) => n.kind === 'manifest')
  if (images.length === 0) {
    const held = manifests.flatMap((n) => n.children.filter((c) => c.kind === 'manifest').map((c) => c.platform ?? '?'))
    throw new KubeferryError('NOT_FOUND', `${image.name}: no manifest for ${platform} (the source holds ${held.join(', ') || 'none'})`, {
      hint: 'import a platform the image has, or fetch the image again with this platform',
    })
  }
  const blobs = new Map<string, Descriptor>()
  for (const node of images) for (const blob of node.blobs) if (!blobs.has(blob.digest)) blobs.set(blob.digest, blob)
  const seen = new Set<string>()
  return {manifests: manifests.filter((n) => !seen.has(n.raw.digest) && seen.add(n.raw.digest)), blobs: [...blobs.values()]}
}

/** The layout's index.json: the image under its full name, at the upstream digest, as the bundle writer names it. */
export function layoutIndexBytes(image: SourcedImage): Buffer {
  const root = image.tree
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [
      {
        mediaType: indexDescriptorMediaType(root.raw.mediaType),
        digest: root.raw.digest,
        size: root.raw.bytes.length,
        annotations: {[ANNOTATION_CONTAINERD_NAME]: image.name, [ANNOTATION_REF_NAME]: image.name},
      },
    ],
  }
  return Buffer.from(JSON.stringify(index))
}

/** The tar's bytes in order: oci-layout, manifests, blobs (streamed, verified), index.json, end of archive. */
async function* layoutTar(image: SourcedImage, source: ImageSource, parts: LayoutParts, counted: {bytes: number}, signal?: AbortSignal): AsyncGenerator<Buffer> {
  yield* smallFile(OCI_LAYOUT_FILE, Buffer.from(OCI_LAYOUT_CONTENT))
  for (const node of parts.manifests) yield* smallFile(blobPath(node.raw.digest), node.raw.bytes)
  for (const blob of parts.blobs) {
    signal?.throwIfAborted()
    yield fileHeader(blobPath(blob.digest), blob.size, 0o644, tarMtime)
    for await (const chunk of verifiedBlob(image, source, blob, signal)) {
      counted.bytes += chunk.length
      yield chunk
    }
    const pad = paddingFor(blob.size)
    if (pad) yield Buffer.alloc(pad)
  }
  yield* smallFile(INDEX_FILE, layoutIndexBytes(image))
  yield Buffer.alloc(END_OF_ARCHIVE_BYTES)
}

function* smallFile(name: string, bytes: Buffer): Generator<Buffer> {
  yield fileHeader(name, bytes.length, 0o644, tarMtime)
  yield bytes
  const pad = paddingFor(bytes.length)
  if (pad) yield Buffer.alloc(pad)
}

/**
 * A blob's bytes from the source, hashed as they pass; the last chunk is yielded only once size and digest match,
 * so ctr never receives a complete entry of wrong bytes.
 */
async function* verifiedBlob(image: SourcedImage, source: ImageSource, blob: Descriptor, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const stream = await source.blob(image.ref, blob, signal ? {signal} : {})
  const hash = createHash('sha256')
  let size = 0
  let held: Buffer | undefined
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > blob.size) throw mismatch('SIZE_MISMATCH', image, source, blob, `more than the ${blob.size} bytes the manifest says`)
      hash.update(chunk)
      if (held) yield held
      held = chunk
    }
  } finally {
    stream.destroy()
  }
  if (size !== blob.size) throw mismatch('SIZE_MISMATCH', image, source, blob, `${size} bytes, the manifest says ${blob.size}`)
  const actual = `sha256:${hash.digest('hex')}`
  if (actual !== blob.digest) throw mismatch('DIGEST_MISMATCH', image, source, blob, `content digest is ${actual}`)
  if (held) yield held
}

function mismatch(code: 'SIZE_MISMATCH' | 'DIGEST_MISMATCH', image: SourcedImage, source: ImageSource, blob: Descriptor, what: string): KubeferryError {
  return new KubeferryError(code, `${image.name}: blob ${blob.digest} from ${source.label}: ${what}; the image was not imported`, {
    hint: 'the source is corrupt or was tampered with; verify it (`kubeferry verify` for a bundle) or fetch the image again',
  })
}

/** A failure while streaming, as one line naming the image (the source's own errors may not). */
function named(name: string, source: ImageSource, error: unknown): KubeferryError {
  if (isKubeferryError(error)) {
    if (error.message.includes(name)) return error
    return new KubeferryError(error.code, `${name}: ${error.message}`, {hint: error.hint, cause: error})
  }
  const message = error instanceof Error ? error.message : String(error)
  return new KubeferryError('RUNTIME', `${name}: importing from ${source.label} into containerd stopped: ${message}`, {cause: error})
}
