/**
 * Deterministic gzip'd tar layers: sorted entries, parent directories added, uid/gid 0, fixed mtime and
 * modes, no PAX records, gzip header without name or mtime at a fixed level. Same input → same digest.
 */
import {createCipheriv, createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, rename, rm, stat} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {Readable, Transform, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGzip} from 'node:zlib'
import tar from 'tar-stream'

/** Every file in a test layer has this mtime (2024-01-01T00:00:00Z). */
export const FIXED_MTIME = new Date(Date.UTC(2024, 0, 1))
export const FIXED_CREATED = FIXED_MTIME.toISOString().replace('.000Z', 'Z')

export type FileContent =
  | {text: string}
  | {file: string}
  /** `size` pseudo-random (incompressible) bytes derived from `seed`. */
  | {random: number; seed: string}

export interface LayerFile {
  /** Path inside the layer without a leading slash, e.g. `bin/busybox`. */
  path: string
  mode?: number
  content: FileContent
}

export interface WrittenBlob {
  digest: string
  size: number
  path: string
}

export interface WrittenLayer extends WrittenBlob {
  /** sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  diffId: string
}

/** Deterministic pseudo-random bytes: AES-128-CTR over zeros with a key derived from the seed. */
export function randomStream(size: number, seed: string): Readable {
  const key = createHash('sha256').update(`kubeferry-test:${seed}`).digest()
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32))
  const chunk = Buffer.alloc(1 << 20)
  let left = size
  return new Readable({
    read() {
      if (left <= 0) {
        this.push(null)
        return
      }
      const n = Math.min(left, chunk.length)
      left -= n
      this.push(cipher.update(chunk.subarray(0, n)))
    },
  })
}

class Hasher extends Transform {
  readonly hash = createHash('sha256')
  size = 0
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk)
    this.size += chunk.length
    callback(null, chunk)
  }
}

async function contentSize(content: FileContent): Promise<number> {
  if ('text' in content) return Buffer.byteLength(content.text)
  if ('file' in content) return (await stat(content.file)).size
  return content.random
}

function contentStream(content: FileContent): Readable {
  if ('text' in content) return Readable.from([Buffer.from(content.text)])
  if ('file' in content) return createReadStream(content.file)
  return randomStream(content.random, content.seed)
}

export function blobPath(blobDir: string, digest: string): string {
  return join(blobDir, 'sha256', digest.slice('sha256:'.length))
}

let tmpCounter = 0
const tmpName = (blobDir: string): string => join(blobDir, `.tmp-${process.pid}-${++tmpCounter}`)

/** Write bytes as a content-addressed blob under `blobDir/sha256/`. */
export async function writeBlob(blobDir: string, data: Buffer): Promise<WrittenBlob> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
  const path = blobPath(blobDir, digest)
  await mkdir(dirname(path), {recursive: true})
  const tmp = tmpName(blobDir)
  await pipeline(Readable.from([data]), createWriteStream(tmp))
  await rename(tmp, path)
  return {digest, size: data.length, path}
}

/** Build one gzip'd tar layer into `blobDir`, streaming (a 100 MB file is never held in memory). */
export async function writeLayer(blobDir: string, files: LayerFile[], gzipLevel = 6): Promise<WrittenLayer> {
  const dirs = new Set<string>()
  for (const f of files) {
    const parts = f.path.split('/')
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'))
  }
  type Entry = {path: string; dir: boolean; file?: LayerFile}
  const entries: Entry[] = [...[...dirs].map((d) => ({path: d, dir: true})), ...files.map((f) => ({path: f.path, dir: false, file: f}))]
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))

  await mkdir(join(blobDir, 'sha256'), {recursive: true})
  const pack = tar.pack()
  const raw = new Hasher()
  const compressed = new Hasher()
  const tmp = tmpName(blobDir)
  const writing = pipeline(pack, raw, createGzip({level: gzipLevel}), compressed, createWriteStream(tmp))
  const common = {mtime: FIXED_MTIME, uid: 0, gid: 0, uname: '', gname: ''}
  try {
    for (const entry of entries) {
      if (entry.dir) {
        await new Promise<void>((resolve, reject) => pack.entry({...common, name: `${entry.path}/`, type: 'directory', mode: 0o755}, (err) => (err ? reject(err) : resolve())))
        continue
      }
      const file = entry.file!
      const size = await contentSize(file.content)
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry({...common, name: entry.path, type: 'file', mode: file.mode ?? 0o644, size}, (err) => (err ? reject(err) : resolve()))
        const source = contentStream(file.content)
        source.on('error', reject)
        source.pipe(sink as unknown as NodeJS.WritableStream)
      })
    }
    pack.finalize()
    await writing
  } catch (error) {
    pack.destroy(error as Error)
    await writing.catch(() => undefined)
    await rm(tmp, {force: true})
    throw error
  }
  const digest = `sha256:${compressed.hash.digest('hex')}`
  const path = blobPath(blobDir, digest)
  await rename(tmp, path)
  return {digest, size: compressed.size, path, diffId: `sha256:${raw.hash.digest('hex')}`}
}
