/**
 * Writes a bundle (see layout.ts) as a deterministic tar: entries sorted by name, regular files only, uid/gid 0,
 * mode 0644 (install.sh 0755), mtime SOURCE_DATE_EPOCH or 0, plain ustar headers (see tar-header.ts; every name is
 * shorter than 100 bytes), ending with exactly 1024 zero bytes.
 *
 * The tar goes to `<output>.partial` and is hashed as it is written; only a complete, flushed file is renamed to
 * `<output>`, then `<output>.sha256` and `<bundle>.install.sh` are written beside it. Blobs are copied in tar order
 * from what `openBlob` gives: a BlobFile (a file, possibly still being downloaded: the writer follows it, so the tar
 * is written while downloads run) or any readable stream. Bytes are copied with two reused buffers and positional
 * writes, so memory stays flat whatever the size of a layer.
 */
import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {open, rename, statfs, unlink, writeFile, type FileHandle} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {KubeferryError} from '../errors.js'
import {digestHex, sha256Digest} from '../oci/digest.js'
import {MediaType} from '../oci/media-types.js'
import {formatChecksums, sideChecksum, type ChecksumLine} from './checksums.js'
import {dockerManifestBytes} from './docker-manifest.js'
import {renderInstallScript} from './install-script.js'
import {
  ANNOTATION_CONTAINERD_NAME,
  ANNOTATION_REF_NAME,
  BUNDLE_SCHEMA_VERSION,
  blobPath,
  CHECKSUMS_FILE,
  DOCKER_MANIFEST_FILE,
  dockerFragmentPath,
  END_OF_ARCHIVE_BYTES,
  INDEX_FILE,
  INSTALL_SCRIPT_FILE,
  METADATA_FILE,
  OCI_LAYOUT_CONTENT,
  OCI_LAYOUT_FILE,
  TAR_BLOCK,
  type BundleMetadata,
} from './layout.js'
import type {BundlePlan, PlannedBlob} from './plan.js'
import {fileHeader, paddingFor, tarOf} from './tar-header.js'

export type BundleRequest = BundleMetadata['request']

/**
 * A blob's bytes in a file that may still be growing (a download in progress). The writer reads only below
 * `readable()`, waits on `more()` for the rest, and fails if `more()` rejects (the download failed).
 */
export interface BlobFile {
  kind: 'file'
  /** Open the file that holds, or is receiving, the blob. */
  open(): Promise<FileHandle>
  /** Bytes that can be read now; the blob's size once it is complete. */
  readable(): number
  /** Resolves when `readable()` has grown or the blob is complete; rejects when it failed. */
  more(): Promise<void>
  /** Resolves once the whole blob is verified (the writer waits for it before going on). */
  settled(): Promise<void>
  /**
   * Hash the bytes while copying and fail on a mismatch: for a file this build did not verify itself (a cache hit
   * from an earlier build). `onMismatch` runs first (e.g. to drop the damaged cache file).
   */
  verify?: {label: string; onMismatch?: () => Promise<void>}
}

export interface WriteBundleOptions {
  output: string
  plan: BundlePlan
  request: BundleRequest
  /** The blob's bytes: a BlobFile, or a stream verified while it flows. May wait until a download starts. */
  openBlob: (blob: PlannedBlob) => Promise<NodeJS.ReadableStream | BlobFile>
  /** Blob bytes copied into the tar (increments). */
  onBlobBytes?: (n: number) => void
  /** Seconds since the epoch for every entry's mtime and bundle.json `created` (SOURCE_DATE_EPOCH); default 0 and no `created`. */
  sourceDateEpoch?: number
  /** fsync the bundle before renaming it into place (default true). */
  fsync?: boolean
  onBlobWritten?: (blob: PlannedBlob) => void
  signal?: AbortSignal
}

export interface WriteBundleResult {
  path: string
  sha256: string
  size: number
  checksumFile: string
  installScript: string
  metadata: BundleMetadata
}

interface Entry {
  name: string
  size: number
  mode: number
  bytes?: Buffer
  blob?: PlannedBlob
}

export function toolVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {version?: string}
    return pkg.version ?? '0.0.0'
  } catch {
    return '0.0.0'
  }
}

/** SOURCE_DATE_EPOCH from the environment, if set and valid. */
export function sourceDateEpochFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env.SOURCE_DATE_EPOCH
  if (text === undefined || text === '') return undefined
  if (!/^[0-9]+$/.test(text)) throw new KubeferryError('INVALID_ARGUMENT', `SOURCE_DATE_EPOCH="${text}" is not a number of seconds`)
  return Number.parseInt(text, 10)
}

export function buildMetadata(plan: BundlePlan, request: BundleRequest, sourceDateEpoch?: number): BundleMetadata {
  return {
    schemaVersion: BUNDLE_SCHEMA_VERSION,
    tool: {name: 'kubeferry', version: toolVersion()},
    ...(sourceDateEpoch !== undefined ? {created: new Date(sourceDateEpoch * 1000).toISOString()} : {}),
    request,
    platforms: plan.platforms,
    dockerPlatform: plan.dockerPlatform,
    images: plan.images,
    blobs: {count: plan.blobs.length, totalSize: plan.blobs.reduce((n, b) => n + b.size, 0)},
  }
}

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

/** A small complete tar held in memory (docker fragments), same rules as the bundle. */
export async function smallTar(files: {name: string; bytes: Buffer}[], mtime: number): Promise<Buffer> {
  return tarOf([...files].sort((a, b) => (a.name < b.name ? -1 : 1)), mtime)
}

const padded = (size: number): number => Math.ceil(size / TAR_BLOCK) * TAR_BLOCK

/** Exact byte size of the tar for these entries (ustar: one header block each, data padded, end marker). */
export function tarSize(entries: {size: number}[]): number {
  return entries.reduce((n, e) => n + TAR_BLOCK + padded(e.size), 0) + END_OF_ARCHIVE_BYTES
}

/** `k8s.tar` → `k8s.install.sh` (same directory). */
export function installScriptPathFor(output: string): string {
  const base = basename(output).replace(/\.tar$/, '')
  return join(dirname(output), `${base}.install.sh`)
}

async function checkSpace(dir: string, needed: number): Promise<void> {
  let free: number
  try {
    const info = await statfs(dir)
    free = Number(info.bavail) * Number(info.bsize)
  } catch {
    return // unknown: let the write fail clearly if it must
  }
  if (free < needed) {
    const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`
    throw new KubeferryError('NO_SPACE', `not enough space in ${dir} for the bundle: ${mb(needed)} needed, ${mb(free)} free`, {hint: 'free some space or write the bundle elsewhere with --output'})
  }
}

async function writeAtomic(path: string, content: string | Buffer, mode: number): Promise<void> {
  const temp = `${path}.partial`
  try {
    await writeFile(temp, content, {mode})
    await rename(temp, path)
  } catch (error) {
    await unlink(temp).catch(() => undefined)
    throw error
  }
}

/** All entries of the bundle in tar order. Blobs come from the plan; everything else is rendered here. */
export async function bundleEntries(plan: BundlePlan, metadata: BundleMetadata, mtime: number): Promise<Entry[]> {
  const small: {name: string; bytes: Buffer; mode: number}[] = []
  small.push({name: OCI_LAYOUT_FILE, bytes: Buffer.from(OCI_LAYOUT_CONTENT), mode: 0o644})
  small.push({name: INDEX_FILE, bytes: ociIndexBytes(metadata), mode: 0o644})
  small.push({name: DOCKER_MANIFEST_FILE, bytes: dockerManifestBytes(metadata.images, metadata.dockerPlatform), mode: 0o644})
  small.push({name: METADATA_FILE, bytes: Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`), mode: 0o644})
  small.push({name: INSTALL_SCRIPT_FILE, bytes: Buffer.from(renderInstallScript(metadata)), mode: 0o755})
  for (const platform of metadata.platforms) {
    const fragment = await smallTar([{name: DOCKER_MANIFEST_FILE, bytes: dockerManifestBytes(metadata.images, platform)}], mtime)
    small.push({name: dockerFragmentPath(platform), bytes: fragment, mode: 0o644})
  }
  const sums: ChecksumLine[] = [
    ...plan.blobs.map((b) => ({hex: digestHex(b.digest), path: blobPath(b.digest)})),
    ...small.map((f) => ({hex: digestHex(sha256Digest(f.bytes)), path: f.name})),
  ]
  small.push({name: CHECKSUMS_FILE, bytes: Buffer.from(formatChecksums(sums)), mode: 0o644})

  const entries: Entry[] = [
    ...plan.blobs.map((blob) => ({name: blobPath(blob.digest), size: blob.size, mode: 0o644, blob})),
    ...small.map((f) => ({name: f.name, size: f.bytes.length, mode: f.mode, bytes: f.bytes})),
  ]
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const entry of entries) {
    if (Buffer.byteLength(entry.name) >= 100) throw new KubeferryError('INTERNAL', `tar entry name too long for a plain ustar header: ${entry.name}`)
  }
  return entries
}

/** Copy buffer size; two of them are reused for the whole bundle. */
const CHUNK = 1024 * 1024

/**
 * The output file: bytes are hashed in order as they are queued and written at explicit positions, so a write can
 * run (in libuv's pool) while the next chunk is read and hashed.
 */
class TarFile {
  position = 0
  readonly hash = createHash('sha256')
  private readonly pending = new Set<Promise<void>>()
  private failure: unknown

  constructor(private readonly handle: FileHandle) {}

  /** Queue `data` at the end; `data` must stay untouched until the returned promise settles. */
  put(data: Buffer): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure)
    this.hash.update(data)
    const at = this.position
    this.position += data.length
    const done = this.writeAll(data, at)
    this.pending.add(done)
    done.then(
      () => this.pending.delete(done),
      (error: unknown) => {
        this.pending.delete(done)
        if (this.failure === undefined) this.failure = error
      },
    )
    return done
  }

  private async writeAll(data: Buffer, at: number): Promise<void> {
    let offset = 0
    while (offset < data.length) {
      const {bytesWritten} = await this.handle.write(data, offset, data.length - offset, at + offset)
      offset += bytesWritten
    }
  }

  async flush(): Promise<void> {
    await Promise.all(this.pending)
    if (this.failure !== undefined) throw this.failure
  }
}

function mismatch(label: string, what: string): KubeferryError {
  return new KubeferryError('DIGEST_MISMATCH', `${label}: ${what}`, {hint: 'the bytes are corrupt or were tampered with; nothing was kept'})
}

async function copyFile(out: TarFile, blob: PlannedBlob, file: BlobFile, buffers: Buffer[], onBytes: ((n: number) => void) | undefined, signal?: AbortSignal): Promise<void> {
  const handle = await file.open()
  const check = file.verify ? createHash('sha256') : undefined
  const writes: Array<Promise<void> | undefined> = [undefined, undefined]
  try {
    let position = 0
    for (let turn = 0; position < blob.size; turn++) {
      signal?.throwIfAborted()
      // Follow a growing file a whole buffer at a time (or to its end): reading each few kilobytes as they land
      // costs more in system calls and pool round trips than it gains in overlap.
      const want = Math.min(buffers[0].length, blob.size - position)
      while (file.readable() - position < want) await file.more()
      const slot = turn & 1
      await writes[slot] // the buffer is free once its previous write is done
      const buffer = buffers[slot]
      const {bytesRead} = await handle.read(buffer, 0, Math.min(buffer.length, file.readable() - position, blob.size - position), position)
      if (bytesRead === 0) throw new KubeferryError('IO', `${blob.digest}: the cached file ended after ${position} of ${blob.size} bytes`, {hint: 'run again; the damaged cache entry is fetched anew'})
      const data = buffer.subarray(0, bytesRead)
      check?.update(data)
      writes[slot] = out.put(data)
      position += bytesRead
      onBytes?.(bytesRead)
    }
    await Promise.all(writes)
    await file.settled()
    if (check && file.verify && `sha256:${check.digest('hex')}` !== blob.digest) {
      await file.verify.onMismatch?.()
      throw mismatch(file.verify.label, `content digest is not ${blob.digest}`)
    }
  } finally {
    await Promise.allSettled(writes)
    await handle.close()
  }
}

async function copyStream(out: TarFile, blob: PlannedBlob, stream: NodeJS.ReadableStream, onBytes: ((n: number) => void) | undefined, signal?: AbortSignal): Promise<void> {
  let copied = 0
  let last: Promise<void> | undefined
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    signal?.throwIfAborted()
    copied += chunk.length
    if (copied > blob.size) throw new KubeferryError('SIZE_MISMATCH', `blob ${blob.digest}: more than the expected ${blob.size} bytes`)
    await last
    last = out.put(chunk)
    onBytes?.(chunk.length)
  }
  await last
  if (copied !== blob.size) throw new KubeferryError('SIZE_MISMATCH', `blob ${blob.digest}: expected ${blob.size} bytes, got ${copied}`)
}

function isBlobFile(value: NodeJS.ReadableStream | BlobFile): value is BlobFile {
  return (value as BlobFile).kind === 'file'
}

export async function writeBundle(options: WriteBundleOptions): Promise<WriteBundleResult> {
  const {output, plan} = options
  const mtime = options.sourceDateEpoch ?? 0
  const metadata = buildMetadata(plan, options.request, options.sourceDateEpoch)
  const entries = await bundleEntries(plan, metadata, mtime)
  const expectedSize = tarSize(entries)
  await checkSpace(dirname(output), expectedSize + 64 * 1024)

  const partial = `${output}.partial`
  let handle: FileHandle | undefined
  let out: TarFile | undefined
  try {
    handle = await open(partial, 'w', 0o644)
    const tar = new TarFile(handle)
    out = tar
    const buffers = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)]
    for (const entry of entries) {
      options.signal?.throwIfAborted()
      void tar.put(fileHeader(entry.name, entry.size, entry.mode, mtime)).catch(() => undefined)
      if (entry.bytes) {
        void tar.put(entry.bytes).catch(() => undefined)
      } else {
        const source = await options.openBlob(entry.blob!)
        if (isBlobFile(source)) await copyFile(tar, entry.blob!, source, buffers, options.onBlobBytes, options.signal)
        else await copyStream(tar, entry.blob!, source, options.onBlobBytes, options.signal)
        options.onBlobWritten?.(entry.blob!)
      }
      const pad = paddingFor(entry.size)
      if (pad > 0) void tar.put(Buffer.alloc(pad)).catch(() => undefined)
    }
    void tar.put(Buffer.alloc(END_OF_ARCHIVE_BYTES)).catch(() => undefined)
    await tar.flush()
    if (tar.position !== expectedSize) throw new KubeferryError('INTERNAL', `bundle size ${tar.position} differs from the computed ${expectedSize}`)
    if (options.fsync !== false) await handle.sync()
    await handle.close()
    handle = undefined
    await rename(partial, output)
  } catch (error) {
    await out?.flush().catch(() => undefined)
    await handle?.close().catch(() => undefined)
    await unlink(partial).catch(() => undefined)
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new KubeferryError('NO_SPACE', `no space left writing ${output}`, {hint: 'free some space or write the bundle elsewhere with --output', cause: error})
    }
    if (code && !(error instanceof KubeferryError) && !(error instanceof Error && error.name === 'AbortError')) {
      throw new KubeferryError('IO', `cannot write ${output}: ${code}`, {hint: 'check the output path and its permissions', cause: error})
    }
    throw error
  }

  const tar = out!
  const sha256 = tar.hash.digest('hex')
  const checksumFile = `${output}.sha256`
  const installScript = installScriptPathFor(output)
  await writeAtomic(checksumFile, sideChecksum(sha256, output), 0o644)
  await writeAtomic(installScript, renderInstallScript(metadata), 0o755)
  return {path: output, sha256, size: tar.position, checksumFile, installScript, metadata}
}
