/**
 * The blobs of a bundle as the writer's copiers read them (tar-fill.ts BlobFile): a download still landing, followed
 * through its temp file, or a blob the store already held, hashed again while it is copied.
 */
import {open, type FileHandle} from 'node:fs/promises'
import type {BlobFill, BlobStore} from '../store/blob-store.js'
import type {PlannedBlob} from './plan.js'
import type {BlobFile} from './tar-fill.js'

async function openEither(first: string, second: string): Promise<FileHandle> {
  try {
    return await open(first, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    return open(second, 'r')
  }
}

/** A blob being downloaded, as the writer reads it: the temp file while it grows, the stored file once renamed. */
export function followFill(fill: BlobFill): BlobFile {
  return {
    kind: 'file',
    // The temp file is gone only when renamed (complete) or removed (failed: report why).
    open: () =>
      openEither(fill.tempPath, fill.finalPath).catch((error: unknown) => {
        throw fill.state === 'failed' ? fill.error : error
      }),
    readable: () => (fill.state === 'complete' ? fill.size : fill.written),
    more: () => fill.changed(),
    settled: async () => {
      while (fill.state !== 'complete') await fill.changed()
    },
  }
}

/** A blob in the store that this build did not verify itself: hashed again while it is copied. */
export function storedFile(store: BlobStore, blob: PlannedBlob): BlobFile {
  const path = store.pathOf(blob.digest)
  return {
    kind: 'file',
    open: () => open(path, 'r'),
    readable: () => blob.size,
    more: async () => undefined,
    settled: async () => undefined,
    // A cache file that no longer matches its digest is dropped so the next run fetches it again.
    verify: {label: `cached blob ${blob.digest} (${path})`, onMismatch: () => store.remove(blob.digest)},
  }
}
