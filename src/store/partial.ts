/**
 * What was downloaded of a blob, kept across runs so that the next run continues it with a Range request instead of
 * fetching the whole layer again.
 *
 * A download in progress writes to `<root>/tmp/<hex>.<pid>.<random>` (owned by that process). When it stops without a
 * verdict (Ctrl-C, network loss, full disk) its file is renamed to `<root>/tmp/<hex>.partial`; when the process is
 * killed (kill -9, power loss) its file stays under its own name and the next `BlobStore.open` adopts it as the
 * partial (its pid no longer runs). A partial is never under `blobs/`, so it cannot be taken for a verified blob; its
 * bytes count for nothing until the digest of the whole blob (kept prefix + new bytes) matched.
 *
 * A download claims the partial by renaming it to its own temp name: rename is atomic, so of two builds sharing the
 * cache only one continues it (the other starts from 0 in its own file). Bytes that failed the digest are never kept.
 */
import {createHash, type Hash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {rename, stat, truncate, unlink} from 'node:fs/promises'

/** Where a blob's resumable bytes rest between runs (`<root>/tmp/<hex>.partial`). */
export const PARTIAL_SUFFIX = '.partial'

/** A killed run's temp file shorter than this is not worth continuing (manifests, configs): it is removed. */
export const PARTIAL_MIN_BYTES = 64 * 1024

/** Partials nobody continued for this long are removed when the store opens (a blob no longer wanted). */
export const PARTIAL_MAX_AGE_MS = 14 * 24 * 3600 * 1000

export type {ResumeFrom} from '../oci/source.js'

/**
 * A source stream that honoured `resume` says where its first byte is with `startsAt` (a registry that ignored the
 * Range request starts at 0). A stream without it starts at 0.
 */
export function startOf(stream: unknown): number {
  const start = (stream as {startsAt?: unknown}).startsAt
  return typeof start === 'number' && Number.isSafeInteger(start) && start > 0 ? start : 0
}

/**
 * Take the blob's partial for this process by renaming it to `temp`. Returns the bytes kept, 0 when there is none or
 * it cannot be used (empty, or longer than the blob: then it is emptied). `temp` exists afterwards only if kept > 0.
 */
export async function claimPartial(partial: string, temp: string, size: number): Promise<number> {
  try {
    await rename(partial, temp)
  } catch {
    return 0 // none (or another build took it a moment ago)
  }
  const length = (await stat(temp)).size
  if (length > 0 && length <= size) return length
  await truncate(temp, 0)
  return 0
}

/** Keep `temp`'s bytes as the blob's partial, unless a partial at least as long is already kept (then drop them). */
export async function keepPartial(temp: string, partial: string): Promise<void> {
  const mine = await stat(temp).catch(() => undefined)
  const kept = await stat(partial).catch(() => undefined)
  if (!mine || mine.size === 0 || (kept && kept.size >= mine.size)) {
    await unlink(temp).catch(() => undefined)
    return
  }
  await rename(temp, partial).catch(() => unlink(temp).catch(() => undefined))
}

/** The SHA-256 state after the first `length` bytes of `path` (the kept prefix, read back). */
export async function hashPrefix(path: string, length: number, signal?: AbortSignal): Promise<Hash> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, {start: 0, end: length - 1, highWaterMark: 1024 * 1024, signal})) hash.update(chunk as Buffer)
  return hash
}
