/**
 * The part files of `create --split` while they are written (see parts-naming.ts for the names). Each part is written
 * as `NAME.tar.00N.partial` and all are renamed to their final names only once the whole bundle is complete, flushed
 * and hashed, so a stopped or killed build never leaves a part under a final name (a rerun truncates and reuses the
 * `.partial` files, and removes those a larger earlier attempt left beyond the new count). The names left over from
 * an earlier bundle written to the same output (more parts than now, `NAME.parts.sha256`, or the bundle as one file)
 * are removed when the new parts take their place, so the directory never mixes two bundles.
 */
import {open, rename, stat, unlink, type FileHandle} from 'node:fs/promises'
import {basename} from 'node:path'
import {KubeferryError} from '../oci/errors.js'
import {MAX_PARTS, partPath, partsChecksumPath} from './parts-naming.js'
import type {OutParts} from './tar-out.js'

const partialOf = (path: string): string => `${path}.partial`

async function removeIfThere(path: string): Promise<boolean> {
  try {
    await unlink(path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
}

/** Remove parts of `bundlePath` numbered `from` (from 1) and up, until one is missing, and `NAME.parts.sha256`. */
export async function removeStaleParts(bundlePath: string, from = 1, suffix = ''): Promise<void> {
  for (let index = from; index <= MAX_PARTS; index++) if (!(await removeIfThere(partPath(bundlePath, index) + suffix))) break
  if (suffix === '') await removeIfThere(partsChecksumPath(bundlePath))
}

/** The `NAME.parts.sha256` content: `<hex>  <part file name>`, one line a part, in order (`sha256sum -c`). */
export function partsChecksums(bundlePath: string, digests: string[]): string {
  return digests.map((hex, i) => `${hex}  ${basename(partPath(bundlePath, i + 1))}\n`).join('')
}

export class PartFiles implements OutParts {
  private readonly handles: Array<Promise<FileHandle> | undefined> = []
  private readonly open: FileHandle[] = []

  constructor(
    readonly bundlePath: string,
    readonly partSize: number,
    readonly count: number,
  ) {
    if (count > MAX_PARTS) throw new KubeferryError('INVALID_ARGUMENT', `${count} parts of ${partSize} bytes, more than the ${MAX_PARTS} a bundle can have`, {hint: 'give a larger --split size'})
  }

  /** Final path of part `index` (from 0). */
  path(index: number): string {
    return partPath(this.bundlePath, index + 1)
  }

  /** Bytes of part `index` (from 0) in a bundle of `total` bytes. */
  sizeOf(index: number, total: number): number {
    return Math.min(this.partSize, total - index * this.partSize)
  }

  file(index: number): Promise<FileHandle> {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) return Promise.reject(new KubeferryError('INTERNAL', `part ${index + 1} is beyond the ${this.count} planned`))
    let handle = this.handles[index]
    if (!handle) {
      // Read as well as write: the hasher reads back what landed ahead of it.
      handle = open(partialOf(this.path(index)), 'w+', 0o644).then((h) => (this.open.push(h), h))
      this.handles[index] = handle
    }
    return handle
  }

  opened(): FileHandle[] {
    return [...this.open]
  }

  /** Before writing: remove `.partial` parts a larger earlier attempt left beyond this count. */
  async removeStalePartials(): Promise<void> {
    await removeStaleParts(this.bundlePath, this.count + 1, '.partial')
  }

  /** Every part has exactly its share of the `total` bytes. */
  async checkSizes(total: number): Promise<void> {
    for (let index = 0; index < this.count; index++) {
      const {size} = await (await this.file(index)).stat()
      const want = this.sizeOf(index, total)
      if (size !== want) throw new KubeferryError('INTERNAL', `part ${basename(this.path(index))} is ${size} bytes, not the computed ${want}`)
    }
  }

  async close(): Promise<void> {
    const handles = this.open.splice(0)
    await Promise.all(handles.map((h) => h.close()))
  }

  /** After a failure: close and remove every `.partial` part. */
  async discard(): Promise<void> {
    await Promise.allSettled(this.handles.map((h) => h?.then((f) => f.close())))
    this.open.length = 0
    await Promise.allSettled(Array.from({length: this.count}, (_, i) => unlink(partialOf(this.path(i)))))
  }

  /**
   * Rename every part into place, in order; if one fails, the ones already renamed are removed again. The checksum
   * file of an earlier bundle goes first (its lines would not match), and what that bundle left under names the new
   * one does not use goes after: parts beyond the new count, and the same output written as one file.
   */
  async commit(): Promise<void> {
    await removeIfThere(partsChecksumPath(this.bundlePath))
    let renamed = 0
    try {
      for (; renamed < this.count; renamed++) await rename(partialOf(this.path(renamed)), this.path(renamed))
    } catch (error) {
      await Promise.allSettled(Array.from({length: renamed}, (_, i) => unlink(this.path(i))))
      throw error
    }
    await removeStaleParts(this.bundlePath, this.count + 1)
    const whole = await stat(this.bundlePath).catch(() => undefined)
    if (whole?.isFile()) await removeIfThere(this.bundlePath)
  }
}
