/**
 * The content-addressed blob cache shared by builds: `<root>/blobs/sha256/<hex>`, each file complete and verified.
 * Bytes go to `<root>/tmp/<hex>.<pid>.<random>` while they are hashed, and are renamed into place only once the
 * digest and size match, so a file under `blobs/` is always whole. What a stopped or killed build had downloaded of a
 * blob is kept as `<root>/tmp/<hex>.partial` and continued by the next build (partial.ts). A hit is a file with the right size; the bundle writer re-hashes hits that were not
 * downloaded by the same build, so a silently damaged cache file is caught there.
 *
 * Verification happens once per download: a source stream that is itself a DigestVerifier for the same digest and
 * size (the registry client's openBlob) is trusted to fail before it ends if the bytes are wrong; any other source
 * is hashed here.
 */
import {randomBytes} from 'node:crypto'
import {createReadStream, existsSync, statSync} from 'node:fs'
import {mkdir, open as openFile, readdir, rename, stat, unlink, writeFile, type FileHandle} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import type {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'
import {DigestVerifier, digestHex, isDigest, sha256Digest, type Digest} from '../oci/digest.js'
import {BlobFill, FillSink} from './blob-fill.js'
import {claimPartial, hashPrefix, keepPartial, PARTIAL_MAX_AGE_MS, PARTIAL_MIN_BYTES, PARTIAL_SUFFIX, startOf, type ResumeFrom} from './partial.js'

export {BlobFill} from './blob-fill.js'
export type {ResumeFrom} from './partial.js'

export interface StoredDescriptor {
  digest: Digest
  size: number
}

/** `$XDG_CACHE_HOME/kubeferry` or `~/.cache/kubeferry`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'kubeferry')
}

function ioError(what: string, error: unknown): KubeferryError {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new KubeferryError('NO_SPACE', `no space left while ${what}`, {hint: 'free some space or point --cache-dir / --output at a larger disk', cause: error})
  }
  return new KubeferryError('IO', `${what}: ${code ?? (error as Error).message}`, {hint: 'check the cache directory (--cache-dir) and its permissions', cause: error})
}

/** The bytes were wrong (not merely cut short): never kept. */
function isIntegrityError(error: unknown): boolean {
  return error instanceof KubeferryError && (error.code === 'DIGEST_MISMATCH' || error.code === 'SIZE_MISMATCH')
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export class BlobStore {
  private constructor(readonly root: string) {}

  static async open(root: string = defaultCacheDir()): Promise<BlobStore> {
    const store = new BlobStore(root)
    try {
      await mkdir(join(root, 'blobs', 'sha256'), {recursive: true})
      await mkdir(join(root, 'tmp'), {recursive: true})
    } catch (error) {
      throw ioError(`creating the cache directory ${root}`, error)
    }
    await store.adoptStaleTemps()
    return store
  }

  get blobsDir(): string {
    return join(this.root, 'blobs', 'sha256')
  }

  pathOf(digest: Digest): string {
    return join(this.blobsDir, digestHex(digest))
  }

  /** True when the blob is present with the expected size. */
  async has(desc: StoredDescriptor): Promise<boolean> {
    // Synchronous on purpose: a stat of a local directory entry takes microseconds, while the promise form builds an
    // ENOENT error (with its stack) for every blob not yet cached, ~0.2 ms each, hundreds per build.
    try {
      const info = statSync(this.pathOf(desc.digest), {throwIfNoEntry: false})
      return info !== undefined && info.isFile() && info.size === desc.size
    } catch {
      return false
    }
  }

  /**
   * A stream of the stored bytes, verified against the digest while it flows. `onBytes` sees each chunk as it is read
   * (observing the file stream, so the verified stream is not set flowing).
   */
  open(desc: StoredDescriptor, options: {highWaterMark?: number; onBytes?: (n: number) => void; signal?: AbortSignal} = {}): Readable {
    const verifier = new DigestVerifier(desc.digest, desc.size, {label: `cached blob ${desc.digest} (${this.pathOf(desc.digest)})`})
    const raw = createReadStream(this.pathOf(desc.digest), {highWaterMark: options.highWaterMark ?? 1024 * 1024, ...(options.signal ? {signal: options.signal} : {})})
    raw.on('error', (error) => verifier.destroy(error))
    const onBytes = options.onBytes
    if (onBytes) raw.on('data', (chunk) => onBytes(chunk.length))
    return raw.pipe(verifier)
  }

  /** Store small content held in memory (manifests). The digest is checked first. */
  async putBytes(desc: StoredDescriptor, bytes: Buffer): Promise<string> {
    if (bytes.length !== desc.size || sha256Digest(bytes) !== desc.digest) {
      throw new KubeferryError('DIGEST_MISMATCH', `content for ${desc.digest} does not match its digest or size`, {hint: 'the source is corrupt; try again'})
    }
    if (await this.has(desc)) return this.pathOf(desc.digest)
    const temp = this.tempPath(desc.digest)
    try {
      await writeFile(temp, bytes)
      await rename(temp, this.pathOf(desc.digest))
    } catch (error) {
      await unlink(temp).catch(() => undefined)
      throw ioError(`writing ${desc.digest} into the cache`, error)
    }
    return this.pathOf(desc.digest)
  }

  /**
   * Make sure the blob is in the store: a hit returns at once (`downloaded: false`); otherwise `openSource()` is
   * streamed (digest checked while it flows, see above) into a temp file that is renamed into place only when it
   * verified. `onFill` gets the BlobFill once the temp file exists, so a reader can follow the bytes as they land.
   *
   * What an earlier run kept of the blob (see partial.ts) is continued: its bytes are hashed again while read back,
   * and `openSource(resume)` is asked for the rest; a source that answers from 0 instead replaces them. Those kept
   * bytes are shown to the reader only once the whole blob verified; if it does not, they are dropped and the blob is
   * fetched once more from 0. A download that stops without a verdict keeps its bytes for the next run.
   */
  async ingest(
    desc: StoredDescriptor,
    openSource: (resume?: ResumeFrom) => Promise<NodeJS.ReadableStream>,
    options: {onBytes?: (n: number) => void; signal?: AbortSignal; onFill?: (fill: BlobFill) => void; onResume?: (kept: number) => void} = {},
  ): Promise<{path: string; downloaded: boolean; resumedFrom: number}> {
    const target = this.pathOf(desc.digest)
    if (await this.has(desc)) return {path: target, downloaded: false, resumedFrom: 0}
    options.signal?.throwIfAborted()
    const temp = this.tempPath(desc.digest)
    const partial = this.partialPath(desc.digest)
    let handle: FileHandle | undefined
    let kept: number
    try {
      kept = await claimPartial(partial, temp, desc.size)
      handle = await openFile(temp, kept > 0 ? 'r+' : 'w', 0o644)
    } catch (error) {
      await unlink(temp).catch(() => undefined)
      throw ioError(`caching blob ${desc.digest}`, error)
    }
    const fill = new BlobFill(temp, target, desc.size)
    options.onFill?.(fill)
    let resumedFrom = 0
    try {
      if (kept > 0) {
        try {
          const resume = {offset: kept, hash: await hashPrefix(temp, kept, options.signal)}
          resumedFrom = await this.transfer(handle, desc, fill, openSource, resume, options)
        } catch (error) {
          if (!isIntegrityError(error)) throw error
          // The kept bytes (or what followed them) were wrong: drop them and fetch the whole blob, once.
          await handle.truncate(0)
          kept = 0
        }
      }
      if (kept === 0) await this.transfer(handle, desc, fill, openSource, undefined, options)
      await handle.close()
      handle = undefined
      await rename(temp, target)
      fill.complete()
    } catch (error) {
      fill.fail(error)
      await handle?.close().catch(() => undefined)
      // Bytes that failed the digest are worthless; anything else (interrupted, network, disk full) is kept.
      if (isIntegrityError(error)) await unlink(temp).catch(() => undefined)
      else await keepPartial(temp, partial)
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC' || (error as NodeJS.ErrnoException).code === 'EDQUOT') throw ioError(`caching blob ${desc.digest}`, error)
      throw error
    }
    return {path: target, downloaded: true, resumedFrom}
  }

  /**
   * One transfer into `handle`: from `resume.offset` if the source continues there (returns that offset), else from 0
   * (returns 0). Continued bytes are held back from the BlobFill until the digest verdict; fresh ones are shown as
   * they land.
   */
  private async transfer(
    handle: FileHandle,
    desc: StoredDescriptor,
    fill: BlobFill,
    openSource: (resume?: ResumeFrom) => Promise<NodeJS.ReadableStream>,
    resume: ResumeFrom | undefined,
    options: {onBytes?: (n: number) => void; signal?: AbortSignal; onResume?: (kept: number) => void},
  ): Promise<number> {
    if (resume && resume.offset === desc.size) {
      // Killed between the last byte and the rename: the kept file may be the whole blob.
      if (`sha256:${resume.hash.digest('hex')}` !== desc.digest) throw new KubeferryError('DIGEST_MISMATCH', `kept partial of ${desc.digest} does not match its digest`)
      options.onResume?.(resume.offset)
      fill.advance(desc.size)
      return resume.offset
    }
    const source = (await openSource(resume)) as Readable
    const startsAt = resume && startOf(source) === resume.offset ? resume.offset : 0
    if (resume && startsAt === 0) await handle.truncate(0) // the source ignored the range: a full download replaces the kept bytes
    if (startsAt > 0) options.onResume?.(startsAt)
    const verified = source instanceof DigestVerifier && source.expected === desc.digest && source.expectedSize === desc.size
    const continued = startsAt > 0 ? {hash: resume!.hash, offset: startsAt} : {}
    const stages: NodeJS.ReadWriteStream[] = verified ? [] : [new DigestVerifier(desc.digest, desc.size, continued)]
    const sink = new FillSink(handle.fd, fill, options.onBytes, {position: startsAt, follow: startsAt === 0})
    try {
      await pipeline([source, ...stages, sink], {signal: options.signal})
    } catch (error) {
      await sink.idle() // no write may land after the file is closed or renamed
      throw error
    }
    if (startsAt > 0) fill.advance(desc.size) // verified: the reader may take the whole blob now
    return startsAt
  }

  /** Remove a damaged entry (e.g. found corrupt when copied into a bundle). */
  async remove(digest: Digest): Promise<void> {
    await unlink(this.pathOf(digest)).catch(() => undefined)
  }

  /** Where the blob's resumable bytes rest between runs (see partial.ts): never under blobs/. */
  partialPath(digest: Digest): string {
    return join(this.root, 'tmp', `${digestHex(digest)}${PARTIAL_SUFFIX}`)
  }

  private tempPath(digest: Digest): string {
    return join(this.root, 'tmp', `${digestHex(digest)}.${process.pid}.${randomBytes(4).toString('hex')}`)
  }

  /**
   * Temp files of processes that no longer run (a killed build) become the partials of their blobs, unless the blob is
   * stored by now or the file is too short to matter; partials nobody continued for weeks are removed.
   */
  private async adoptStaleTemps(): Promise<void> {
    const dir = join(this.root, 'tmp')
    let names: string[] = []
    try {
      names = await readdir(dir)
    } catch {
      return
    }
    for (const name of names) {
      const path = join(dir, name)
      const [hex, owner] = name.split('.')
      if (owner === PARTIAL_SUFFIX.slice(1)) {
        const info = await stat(path).catch(() => undefined)
        if (info && Date.now() - info.mtimeMs > PARTIAL_MAX_AGE_MS) await unlink(path).catch(() => undefined)
        continue
      }
      const pid = Number.parseInt(owner ?? '', 10)
      if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue
      const digest = `sha256:${hex}`
      const size = statSync(path, {throwIfNoEntry: false})?.size ?? 0
      if (isDigest(digest) && size >= PARTIAL_MIN_BYTES && !existsSync(this.pathOf(digest))) await keepPartial(path, this.partialPath(digest))
      else await unlink(path).catch(() => undefined)
    }
  }
}
