/**
 * Writes a bundle (see layout.ts) as a deterministic tar: entries sorted by name, regular files only, uid/gid 0,
 * mode 0644 (install.sh 0755), mtime SOURCE_DATE_EPOCH or 0, plain ustar headers (see tar-header.ts; every name is
 * shorter than 100 bytes), ending with exactly 1024 zero bytes.
 *
 * The tar goes to `<output>.partial`; only a complete, flushed file is renamed to `<output>`, then `<output>.sha256`
 * and `<bundle>.install.sh` are written beside it. Its layout is known before the first byte: headers, small files and
 * manifests are written at once, and each blob at its final offset by one of a few copiers that take blobs in tar
 * order from what `openBlob` gives: a BlobFile (a file, possibly still being downloaded: the copier follows it, so the
 * tar is written while downloads run) or any readable stream. The SHA-256 of the whole file is taken in order
 * alongside (tar-out.ts). Each copier reuses two buffers, so memory stays flat whatever the size of a layer.
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
import {BlobRegion, hashInOrder, TarOut} from './tar-out.js'

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
  /** Bytes written into the tar (increments; they add up to the tar's size). */
  onTarBytes?: (n: number) => void
  /** Seconds since the epoch for every entry's mtime and bundle.json `created` (SOURCE_DATE_EPOCH); default 0 and no `created`. */
  sourceDateEpoch?: number
  /** fsync the bundle before renaming it into place (default true). */
  fsync?: boolean
  onBlobWritten?: (blob: PlannedBlob) => void
  /**
   * Blobs copied at the same time, each with two 1 MiB buffers: at least the downloads in flight (default 8). One on
   * a filesystem without sparse files (see keepsHoles).
   */
  copiers?: number
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

/** Copy buffer size; each copier reuses two. */
const CHUNK = 1024 * 1024
/** Blobs copied at the same time (in tar order) by default: as many as downloads run by default. */
const COPIERS = 8

/**
 * Filesystems without sparse files fill a gap with zeros as soon as something is written past the end of a file:
 * FAT and exFAT (the USB stick an operator carries across the gap), NTFS, HFS+, and FUSE ones such as ntfs-3g (which
 * FUSE filesystem it is cannot be told, so all of them). Blobs written out of order there would write most of the
 * bundle twice; the writer keeps to one copier, so that each write lands right after the previous one.
 */
const NO_SPARSE_FILES = new Set([0x4d44, 0x2011bab0, 0x5346544e, 0x482b, 0x65735546])

/** Whether the filesystem of type `type` (statfs f_type) keeps a gap in a file as a hole. */
export function keepsHoles(type: number): boolean {
  return !NO_SPARSE_FILES.has(type)
}

async function keepsHolesIn(dir: string): Promise<boolean> {
  try {
    return keepsHoles(Number((await statfs(dir)).type))
  } catch {
    return false // unknown: write in order
  }
}

/** The tar as regions at their final offsets: runs of small bytes (headers, padding, small files) and blob data. */
type Segment = {kind: 'bytes'; offset: number; data: Buffer} | {kind: 'blob'; offset: number; blob: PlannedBlob}

function layoutOf(entries: Entry[], mtime: number): Segment[] {
  const segments: Segment[] = []
  let run: Buffer[] = []
  let runStart = 0
  let offset = 0
  const add = (data: Buffer): void => {
    run.push(data)
    offset += data.length
  }
  for (const entry of entries) {
    add(fileHeader(entry.name, entry.size, entry.mode, mtime))
    const bytes = entry.bytes ?? entry.blob?.bytes // manifests are in memory: written with the headers
    if (bytes) {
      if (bytes.length !== entry.size) throw new KubeferryError('INTERNAL', `${entry.name}: ${bytes.length} bytes in memory, ${entry.size} planned`)
      add(bytes)
    } else {
      segments.push({kind: 'bytes', offset: runStart, data: Buffer.concat(run)})
      segments.push({kind: 'blob', offset, blob: entry.blob!})
      offset += entry.size
      run = []
      runStart = offset
    }
    const pad = paddingFor(entry.size)
    if (pad > 0) add(Buffer.alloc(pad))
  }
  add(Buffer.alloc(END_OF_ARCHIVE_BYTES))
  segments.push({kind: 'bytes', offset: runStart, data: Buffer.concat(run)})
  return segments.filter((s) => s.kind === 'blob' || s.data.length > 0)
}

function mismatch(label: string, what: string): KubeferryError {
  return new KubeferryError('DIGEST_MISMATCH', `${label}: ${what}`, {hint: 'the bytes are corrupt or were tampered with; nothing was kept'})
}

/** Resolves with `promise`, or rejects as soon as `signal` aborts (a copier must not wait for a download that is being stopped). */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, {once: true})
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

async function copyFile(region: BlobRegion, blob: PlannedBlob, file: BlobFile, buffers: Buffer[], onBytes: ((n: number) => void) | undefined, signal: AbortSignal): Promise<void> {
  const handle = await unlessAborted(file.open(), signal)
  const check = file.verify ? createHash('sha256') : undefined
  const writes: Array<Promise<void> | undefined> = [undefined, undefined]
  try {
    let position = 0
    for (let turn = 0; position < blob.size; turn++) {
      signal.throwIfAborted()
      // Follow a growing file a whole buffer at a time (or to its end): reading each few kilobytes as they land
      // costs more in system calls and pool round trips than it gains in overlap.
      const want = Math.min(buffers[0].length, blob.size - position)
      while (file.readable() - position < want) await unlessAborted(file.more(), signal)
      const slot = turn & 1
      await writes[slot] // the buffer is free once its previous write is done
      const buffer = buffers[slot]
      const {bytesRead} = await handle.read(buffer, 0, Math.min(buffer.length, file.readable() - position, blob.size - position), position)
      if (bytesRead === 0) throw new KubeferryError('IO', `${blob.digest}: the cached file ended after ${position} of ${blob.size} bytes`, {hint: 'run again; the damaged cache entry is fetched anew'})
      const data = buffer.subarray(0, bytesRead)
      check?.update(data)
      writes[slot] = region.put(data, position)
      position += bytesRead
      onBytes?.(bytesRead)
    }
    await Promise.all(writes)
    await unlessAborted(file.settled(), signal)
    if (check && file.verify && `sha256:${check.digest('hex')}` !== blob.digest) {
      await file.verify.onMismatch?.()
      throw mismatch(file.verify.label, `content digest is not ${blob.digest}`)
    }
  } finally {
    await Promise.allSettled(writes)
    await handle.close()
  }
}

async function copyStream(region: BlobRegion, blob: PlannedBlob, stream: NodeJS.ReadableStream, onBytes: ((n: number) => void) | undefined, signal: AbortSignal): Promise<void> {
  let copied = 0
  let last: Promise<void> | undefined
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      signal.throwIfAborted()
      if (copied + chunk.length > blob.size) throw new KubeferryError('SIZE_MISMATCH', `blob ${blob.digest}: more than the expected ${blob.size} bytes`)
      await last
      last = region.put(chunk, copied)
      copied += chunk.length
      onBytes?.(chunk.length)
    }
    await last
  } finally {
    await last?.catch(() => undefined)
  }
  if (copied !== blob.size) throw new KubeferryError('SIZE_MISMATCH', `blob ${blob.digest}: expected ${blob.size} bytes, got ${copied}`)
}

function isBlobFile(value: NodeJS.ReadableStream | BlobFile): value is BlobFile {
  return (value as BlobFile).kind === 'file'
}

/**
 * Fill `out` from the layout: small runs at once, blobs by `options.copiers` workers in tar order (each blob as its bytes
 * arrive), and the in-order hash alongside. Returns when every byte is written and hashed; on the first failure
 * everything stops and that failure is thrown once nothing is in flight any more.
 */
async function fillTar(out: TarOut, segments: Segment[], options: WriteBundleOptions, fsync: boolean): Promise<void> {
  const stop = new AbortController()
  const regions = new Map<Segment, BlobRegion>()
  let failure: {error: unknown} | undefined
  const failed = (error: unknown): void => {
    if (failure === undefined) failure = {error}
    stop.abort(error)
    for (const region of regions.values()) region.fail(error)
  }
  // An abort from outside (Ctrl-C, a failed download) is a failure like any other: nothing is renamed into place.
  const onOuterAbort = (): void => failed(options.signal?.reason)
  options.signal?.addEventListener('abort', onOuterAbort)
  if (options.signal?.aborted) onOuterAbort()
  for (const segment of segments) if (segment.kind === 'blob') regions.set(segment, new BlobRegion(out, segment.offset, segment.blob.size))
  // Everything is taken in tar order, the small runs too: with one copier every write lands right after the previous
  // one, and with several the file never grows far past the blobs being copied.
  const queue = [...segments]
  const copier = async (): Promise<void> => {
    let buffers: Buffer[] | undefined
    for (let segment = queue.shift(); segment && failure === undefined; segment = queue.shift()) {
      try {
        if (segment.kind === 'bytes') {
          await out.write(segment.data, segment.offset)
          options.onTarBytes?.(segment.data.length)
          continue
        }
        buffers ??= [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)]
        const region = regions.get(segment)!
        const source = await unlessAborted(options.openBlob(segment.blob), stop.signal)
        if (isBlobFile(source)) await copyFile(region, segment.blob, source, buffers, options.onTarBytes, stop.signal)
        else await copyStream(region, segment.blob, source, options.onTarBytes, stop.signal)
        options.onBlobWritten?.(segment.blob)
      } catch (error) {
        failed(error)
      }
    }
  }
  const hasher = async (): Promise<void> => {
    const parts = segments.map((s) => (s.kind === 'bytes' ? s.data : regions.get(s)!))
    await hashInOrder(out, parts, () => failure !== undefined).catch(failed)
  }
  const hashed = hasher()
  try {
    await Promise.all(Array.from({length: Math.max(1, options.copiers ?? COPIERS)}, copier))
    await out.flush().catch(failed)
    // Every byte is in the file; the hasher may still be reading back the blobs that landed last. Flushing the file
    // to disk meanwhile takes that time off the end (the fsync after this one finds little left to write).
    const synced = failure === undefined && fsync ? out.handle.datasync() : undefined
    await hashed
    await synced?.catch(failed)
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort)
  }
  if (failure !== undefined) throw failure.error
}

export async function writeBundle(options: WriteBundleOptions): Promise<WriteBundleResult> {
  const {output, plan} = options
  const mtime = options.sourceDateEpoch ?? 0
  const metadata = buildMetadata(plan, options.request, options.sourceDateEpoch)
  const entries = await bundleEntries(plan, metadata, mtime)
  const expectedSize = tarSize(entries)
  await checkSpace(dirname(output), expectedSize + 64 * 1024)
  const segments = layoutOf(entries, mtime)

  const partial = `${output}.partial`
  let handle: FileHandle | undefined
  let out: TarOut | undefined
  try {
    options.signal?.throwIfAborted()
    handle = await open(partial, 'w+', 0o644) // read as well: the hasher reads back what landed ahead of it
    out = new TarOut(handle)
    const copiers = (await keepsHolesIn(dirname(output))) ? options.copiers : 1
    await fillTar(out, segments, {...options, copiers}, options.fsync !== false)
    const {size} = await handle.stat()
    if (size !== expectedSize) throw new KubeferryError('INTERNAL', `bundle size ${size} differs from the computed ${expectedSize}`)
    if (options.fsync !== false) await handle.sync()
    await handle.close()
    handle = undefined
    options.signal?.throwIfAborted() // interrupted during the fsync: still nothing under the final name
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

  const sha256 = out.hash.digest('hex')
  const checksumFile = `${output}.sha256`
  const installScript = installScriptPathFor(output)
  await writeAtomic(checksumFile, sideChecksum(sha256, output), 0o644)
  await writeAtomic(installScript, renderInstallScript(metadata), 0o755)
  return {path: output, sha256, size: expectedSize, checksumFile, installScript, metadata}
}
