/**
 * The content-addressed blob cache shared by builds: `<root>/blobs/sha256/<hex>`, each file complete and verified.
 * Bytes go to `<root>/tmp/<hex>.<pid>.<random>` while they are hashed, and are renamed into place only once the
 * digest and size match, so a file under `blobs/` is always whole; a killed build leaves at most a temp file that
 * the next open removes. A hit is a file with the right size; the bundle writer re-hashes hits that were not
 * downloaded by the same build, so a silently damaged cache file is caught there.
 *
 * Verification happens once per download: a source stream that is itself a DigestVerifier for the same digest and
 * size (the registry client's openBlob) is trusted to fail before it ends if the bytes are wrong; any other source
 * is hashed here.
 */
import {randomBytes} from 'node:crypto'
import {createReadStream, statSync} from 'node:fs'
import {mkdir, open as openFile, readdir, rename, unlink, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import type {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'
import {DigestVerifier, digestHex, sha256Digest, type Digest} from '../oci/digest.js'
import {BlobFill, FillSink} from './blob-fill.js'

export {BlobFill} from './blob-fill.js'

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
    await store.removeStaleTemps()
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

  /** A stream of the stored bytes, verified against the digest while it flows. */
  open(desc: StoredDescriptor): Readable {
    const verifier = new DigestVerifier(desc.digest, desc.size, {label: `cached blob ${desc.digest} (${this.pathOf(desc.digest)})`})
    const raw = createReadStream(this.pathOf(desc.digest), {highWaterMark: 1024 * 1024})
    raw.on('error', (error) => verifier.destroy(error))
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
   */
  async ingest(
    desc: StoredDescriptor,
    openSource: () => Promise<NodeJS.ReadableStream>,
    options: {onBytes?: (n: number) => void; signal?: AbortSignal; onFill?: (fill: BlobFill) => void} = {},
  ): Promise<{path: string; downloaded: boolean}> {
    const target = this.pathOf(desc.digest)
    if (await this.has(desc)) return {path: target, downloaded: false}
    options.signal?.throwIfAborted()
    const temp = this.tempPath(desc.digest)
    // The temp file first: between opening the source and piping it nothing may wait, or an early error of the
    // source would find no listener.
    let handle
    try {
      handle = await openFile(temp, 'w', 0o644)
    } catch (error) {
      throw ioError(`caching blob ${desc.digest}`, error)
    }
    const fill = new BlobFill(temp, target, desc.size)
    try {
      const source = (await openSource()) as Readable
      const verified = source instanceof DigestVerifier && source.expected === desc.digest && source.expectedSize === desc.size
      const stages: NodeJS.ReadWriteStream[] = verified ? [] : [new DigestVerifier(desc.digest, desc.size)]
      options.onFill?.(fill)
      await pipeline([source, ...stages, new FillSink(handle.fd, fill, options.onBytes)], {signal: options.signal})
      await handle.close()
      handle = undefined
      await rename(temp, target)
      fill.complete()
    } catch (error) {
      fill.fail(error)
      await handle?.close().catch(() => undefined)
      await unlink(temp).catch(() => undefined)
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC' || (error as NodeJS.ErrnoException).code === 'EDQUOT') throw ioError(`caching blob ${desc.digest}`, error)
      throw error
    }
    return {path: target, downloaded: true}
  }

  /** Remove a damaged entry (e.g. found corrupt when copied into a bundle). */
  async remove(digest: Digest): Promise<void> {
    await unlink(this.pathOf(digest)).catch(() => undefined)
  }

  private tempPath(digest: Digest): string {
    return join(this.root, 'tmp', `${digestHex(digest)}.${process.pid}.${randomBytes(4).toString('hex')}`)
  }

  /** Temp files of processes that no longer run (a killed build). */
  private async removeStaleTemps(): Promise<void> {
    let names: string[] = []
    try {
      names = await readdir(join(this.root, 'tmp'))
    } catch {
      return
    }
    for (const name of names) {
      const pid = Number.parseInt(name.split('.')[1] ?? '', 10)
      if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) await unlink(join(this.root, 'tmp', name)).catch(() => undefined)
    }
  }
}
