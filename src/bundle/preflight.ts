/**
 * What create checks before it writes, so that an output that cannot take the bundle fails once the plan is known, not
 * after gigabytes: the output's directory exists and is writable (before the plan), then, once the plan gives the
 * bundle's size, that the file fits the filesystem's file-size limit (FAT/exFAT: 4 GiB − 1 byte) and that there is
 * space for it and for the blobs still to fetch. The downloads the plan started meanwhile fill only the cache, where
 * the next run finds them. With create --split the file-size limit applies to the largest part
 * (the bundle when it fits in one); the space needed is the bundle's either way.
 */
import {constants} from 'node:fs'
import {access, stat, statfs} from 'node:fs/promises'
import {dirname} from 'node:path'
import {KubeferryError} from '../oci/errors.js'
import {MAX_PARTS, partCount} from './parts-naming.js'

/** statfs f_type of filesystems whose files cannot reach 4 GiB: FAT (msdos/vfat) and exFAT. */
const FAT_TYPES = new Map<number, string>([
  [0x4d44, 'FAT'],
  [0x2011bab0, 'exFAT'],
])
/** The largest file FAT and (as Linux mounts it for removable media) exFAT hold: 4 GiB − 1 byte. */
export const FAT_MAX_FILE_BYTES = 4 * 1024 ** 3 - 1

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`

/** The largest file a filesystem of statfs type `type` holds, and its name; undefined when no limit that matters. */
export function fileSizeLimit(type: number): {bytes: number; filesystem: string} | undefined {
  const filesystem = FAT_TYPES.get(type)
  return filesystem ? {bytes: FAT_MAX_FILE_BYTES, filesystem} : undefined
}

/** The output's directory exists, is a directory, and can be written; the output itself is not a directory. */
export async function checkOutputDir(output: string): Promise<void> {
  const dir = dirname(output)
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => error)
  if (info instanceof Error) {
    if (info.code === 'ENOENT') throw new KubeferryError('IO', `the output directory ${dir} does not exist`, {hint: `create it (mkdir -p ${dir}) or choose another --output`})
    throw new KubeferryError('IO', `cannot use the output directory ${dir}: ${info.code ?? info.message}`, {hint: 'check the path and its permissions, or choose another --output'})
  }
  if (!info.isDirectory()) throw new KubeferryError('IO', `${dir} (the directory of --output) is not a directory`, {hint: 'choose another --output'})
  const existing = await stat(output).catch(() => undefined)
  if (existing?.isDirectory()) throw new KubeferryError('IO', `--output ${output} is a directory`, {hint: `name the bundle file, e.g. --output ${output.replace(/\/+$/, '')}/bundle.tar`})
  try {
    await access(dir, constants.W_OK | constants.X_OK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'EROFS' ? 'it is on a read-only filesystem' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? String(error))
    throw new KubeferryError('IO', `cannot write the bundle into ${dir}: ${why}`, {hint: 'choose a directory you can write with --output, or fix its permissions'})
  }
}

async function sameDevice(a: string, b: string): Promise<boolean> {
  try {
    return (await stat(a)).dev === (await stat(b)).dev
  } catch {
    return false
  }
}

export type FsProbe = (dir: string) => Promise<{free: number; type: number} | undefined>

async function fsInfo(dir: string): Promise<{free: number; type: number} | undefined> {
  try {
    const info = await statfs(dir)
    return {free: Number(info.bavail) * Number(info.bsize), type: Number(info.type)}
  } catch {
    return undefined // unknown: the write fails clearly if it must
  }
}

/**
 * The bundle (`bundleBytes`) fits the output's filesystem (file-size limit, free space), and the blobs still to fetch
 * (`missingBytes`) fit the cache (which holds the bundle too when it is on the same filesystem). With `partSize`
 * (create --split) the bundle is written in parts: the largest part must fit the file-size limit, and the parts be
 * at most MAX_PARTS.
 */
export async function checkBundleFits(output: string, bundleBytes: number, missingBytes: number, cacheDir: string, images: number, probe: FsProbe = fsInfo, partSize?: number): Promise<void> {
  const outDir = dirname(output)
  if (partSize !== undefined && partCount(bundleBytes, partSize) > MAX_PARTS) {
    throw new KubeferryError('INVALID_ARGUMENT', `the bundle of ${images} images is ${mb(bundleBytes)}: --split ${partSize} bytes would make ${partCount(bundleBytes, partSize)} parts, more than the ${MAX_PARTS} a bundle can have`, {
      hint: `give a --split of at least ${Math.ceil(bundleBytes / MAX_PARTS)} bytes`,
    })
  }
  const out = await probe(outDir)
  const limit = out && fileSizeLimit(out.type)
  const largestFile = partSize === undefined ? bundleBytes : Math.min(partSize, bundleBytes)
  if (limit && largestFile > limit.bytes) {
    if (partSize !== undefined) {
      throw new KubeferryError('NO_SPACE', `--split ${partSize} bytes makes parts larger than the ${limit.bytes} bytes (4 GiB − 1) a file can hold on the ${limit.filesystem} filesystem of ${outDir}`, {
        hint: 'use --split fat32 (the largest part FAT and exFAT hold) or a smaller size',
      })
    }
    throw new KubeferryError('NO_SPACE', `the bundle of ${images} images is ${mb(bundleBytes)} (${bundleBytes} bytes), more than the ${limit.bytes} bytes (4 GiB − 1) a file can hold on the ${limit.filesystem} filesystem of ${outDir}`, {
      hint: 'write it in parts that fit with --split fat32, or write to another filesystem (ext4, XFS, NTFS…) with --output',
    })
  }
  const shared = await sameDevice(cacheDir, outDir)
  const cache = await probe(cacheDir)
  const needCache = missingBytes + (shared ? bundleBytes : 0)
  if (cache !== undefined && cache.free < needCache) {
    throw new KubeferryError('NO_SPACE', `not enough space for ${images} images: ${mb(needCache)} needed in ${cacheDir}${shared ? ' (cache + bundle)' : ''}, ${mb(cache.free)} free`, {
      hint: 'free some space, or put the cache (--cache-dir) and the bundle (--output) on a larger disk',
    })
  }
  if (!shared && out !== undefined && out.free < bundleBytes) {
    throw new KubeferryError('NO_SPACE', `not enough space in ${outDir} for the bundle: ${mb(bundleBytes)} needed, ${mb(out.free)} free`, {hint: 'free some space or write the bundle elsewhere with --output'})
  }
}
