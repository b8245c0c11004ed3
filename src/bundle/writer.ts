/**
 * Writes a bundle (see layout.ts) as a deterministic tar: entries sorted by name, regular files only, uid/gid 0,
 * mode 0644 (install.sh 0755), mtime SOURCE_DATE_EPOCH or 0, plain ustar headers (see tar-header.ts; every name is
 * shorter than 100 bytes), ending with exactly 1024 zero bytes.
 *
 * The tar goes to `<output>.partial`; only a complete, flushed file is renamed to `<output>`, then `<output>.sha256`
 * and `<bundle>.install.sh` are written beside it. The file is filled by tar-fill.ts: each blob at its final offset
 * while it still downloads, the SHA-256 of the whole file taken in order alongside.
 */
import {readFileSync} from 'node:fs'
import {open, rename, statfs, unlink, writeFile, type FileHandle} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {KubeferryError} from '../oci/errors.js'
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
import type {BundlePlan} from './plan.js'
import {fillTar, keepsHolesIn, layoutOf, type FillOptions, type LayoutEntry} from './tar-fill.js'
import {tarOf} from './tar-header.js'
import {TarOut} from './tar-out.js'


export type BundleRequest = BundleMetadata['request']

/** What to write (and how to fill it: see FillOptions). */
export interface WriteBundleOptions extends FillOptions {
  output: string
  plan: BundlePlan
  request: BundleRequest
  /** Seconds since the epoch for every entry's mtime and bundle.json `created` (SOURCE_DATE_EPOCH); default 0 and no `created`. */
  sourceDateEpoch?: number
  /** fsync the bundle before renaming it into place (default true). */
  fsync?: boolean
}

export interface WriteBundleResult {
  path: string
  sha256: string
  size: number
  checksumFile: string
  installScript: string
  metadata: BundleMetadata
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
export async function bundleEntries(plan: BundlePlan, metadata: BundleMetadata, mtime: number): Promise<LayoutEntry[]> {
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

  const entries: LayoutEntry[] = [
    ...plan.blobs.map((blob) => ({name: blobPath(blob.digest), size: blob.size, mode: 0o644, blob})),
    ...small.map((f) => ({name: f.name, size: f.bytes.length, mode: f.mode, bytes: f.bytes})),
  ]
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const entry of entries) {
    if (Buffer.byteLength(entry.name) >= 100) throw new KubeferryError('INTERNAL', `tar entry name too long for a plain ustar header: ${entry.name}`)
  }
  return entries
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
