/**
 * The positional tar output and its in-order hash: blobs written at their offsets in any order, the hash taken from
 * the copier's buffer when the hasher waits at that spot and read back from the file when a blob got ahead of it.
 * Whatever the order, the hash must be the hash of the file.
 */
import {createHash, randomBytes} from 'node:crypto'
import {mkdtemp, open, readdir, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {PartFiles} from '../../src/bundle/part-files.js'
import {partCount} from '../../src/bundle/parts-naming.js'
import {BlobRegion, hashInOrder, TarOut} from '../../src/bundle/tar-out.js'

const MiB = 1024 * 1024

async function withFile<T>(fn: (out: TarOut, path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-tar-out-'))
  const path = join(dir, 'out.tar')
  const handle = await open(path, 'w+')
  try {
    return await fn(new TarOut(handle), path)
  } finally {
    await handle.close()
    await rm(dir, {recursive: true, force: true})
  }
}

/** Put `data` into `region` in `chunk`-sized pieces, in order, two writes in flight as the writer's copiers do. */
async function copy(region: BlobRegion, data: Buffer, chunk: number, pause?: () => Promise<void>): Promise<void> {
  const writes: Array<Promise<void> | undefined> = [undefined, undefined]
  for (let position = 0, turn = 0; position < data.length; position += chunk, turn++) {
    await writes[turn & 1]
    writes[turn & 1] = region.put(data.subarray(position, position + chunk), position)
    await pause?.()
  }
  await Promise.all(writes)
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

test('blobs landing out of order: the hash is the file\'s, read back only for what got ahead of the hasher', async (t) => {
  await withFile(async (out, path) => {
    const head = randomBytes(700)
    const first = randomBytes(3 * MiB + 123)
    const middle = randomBytes(300)
    const second = randomBytes(2 * MiB + 7)
    const tail = Buffer.alloc(1024)
    const r1 = new BlobRegion(out, head.length, first.length)
    const r2 = new BlobRegion(out, head.length + first.length + middle.length, second.length)
    const tailAt = r2.offset + second.length
    await Promise.all([out.write(head, 0), out.write(middle, r1.offset + first.length), out.write(tail, tailAt)])

    // The second blob lands completely before the hasher gets there; the first trickles in while it waits.
    await copy(r2, second, 256 * 1024)
    const hashing = hashInOrder(out, [head, r1, middle, r2, tail], () => false)
    await tick()
    await copy(r1, first, 64 * 1024, tick)
    await hashing
    await out.flush()

    const file = await readFile(path)
    t.is(file.length, tailAt + tail.length)
    t.true(file.equals(Buffer.concat([head, first, middle, second, tail])), 'every part at its offset')
    t.is(out.hash.digest('hex'), createHash('sha256').update(file).digest('hex'))
    t.is(r2.readBack, second.length, 'the blob that was ahead is read back')
    t.true(r1.readBack < first.length / 2, `the blob the hasher waited on is mostly hashed from the buffers (${r1.readBack} read back)`)
  })
})

test('a blob half written when the hasher arrives: the written part is read back, the rest hashed as it comes', async (t) => {
  await withFile(async (out, path) => {
    const data = randomBytes(4 * MiB)
    const region = new BlobRegion(out, 0, data.length)
    const half = 2 * MiB
    await region.put(data.subarray(0, half), 0)
    await tick()
    const hashing = hashInOrder(out, [region], () => false)
    // A download slower than the hasher: each chunk arrives once the hasher has caught up.
    for (let position = half; position < data.length; position += MiB) {
      while (region.hashed < position) await tick()
      await region.put(data.subarray(position, position + MiB), position)
    }
    await hashing
    await out.flush()
    t.is(out.hash.digest('hex'), createHash('sha256').update(await readFile(path)).digest('hex'))
    t.is(region.hashed, data.length)
    t.is(region.readBack, half, 'what was in the file when the hasher came is read back; the rest comes from the buffers')
  })
})

test('a copier that fails wakes the hasher with its error', async (t) => {
  await withFile(async (out) => {
    const region = new BlobRegion(out, 0, MiB)
    const hashing = hashInOrder(out, [region], () => false)
    await region.put(Buffer.alloc(1000), 0)
    await tick()
    region.fail(new Error('download failed (injected)'))
    await t.throwsAsync(hashing, {message: /injected/})
  })
})

test('in parts: the same out-of-order writes land in consecutive part files, each hashed as it passes and the whole as one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-tar-out-parts-'))
  t.teardown(() => rm(dir, {recursive: true, force: true}))
  const partSize = MiB + 333 // not a multiple of any write: every region crosses a part's end somewhere
  const head = randomBytes(700)
  const first = randomBytes(3 * MiB + 123)
  const second = randomBytes(2 * MiB + 7)
  const tail = Buffer.alloc(1024)
  const total = head.length + first.length + second.length + tail.length
  const files = new PartFiles(join(dir, 'b.tar'), partSize, partCount(total, partSize))
  const out = new TarOut(files)
  const r1 = new BlobRegion(out, head.length, first.length)
  const r2 = new BlobRegion(out, r1.offset + first.length, second.length)
  await Promise.all([out.write(head, 0), out.write(tail, r2.offset + second.length)])
  await copy(r2, second, 256 * 1024) // ahead of the hasher: read back across part ends
  const hashing = hashInOrder(out, [head, r1, r2, tail], () => false)
  await tick()
  await copy(r1, first, 64 * 1024, tick)
  await hashing
  await out.flush()
  await files.checkSizes(total)
  await files.close()
  await files.commit()
  const whole = Buffer.concat([head, first, second, tail])
  const parts = await Promise.all(Array.from({length: files.count}, (_, i) => readFile(files.path(i))))
  t.is(parts.length, 6) // 5 MiB + 1854 bytes in parts of 1 MiB + 333
  t.true(Buffer.concat(parts).equals(whole), 'the parts are the bundle')
  t.deepEqual(await out.partDigests(), parts.map((p) => createHash('sha256').update(p).digest('hex')))
  t.is(out.hash.digest('hex'), createHash('sha256').update(whole).digest('hex'))
  t.deepEqual((await readdir(dir)).sort(), ['b.tar.001', 'b.tar.002', 'b.tar.003', 'b.tar.004', 'b.tar.005', 'b.tar.006'], 'no .partial left')
})

test('fillTar: a download that fails as the build is stopped ends in its error, never an unhandled rejection', async (t) => {
  const {fillTar} = await import('../../src/bundle/tar-fill.js')
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-tar-fill-'))
  try {
    const growing = join(dir, 'growing')
    await (await open(growing, 'w')).close()
    const stop = new AbortController()
    const downloadFailed = new Error('content digest is sha256:…, expected sha256:…')
    // The build is stopped (its signal aborts) in the same turn as the copier asks the failed download for more.
    const file = {
      kind: 'file' as const,
      open: () => open(growing, 'r'),
      readable: () => {
        stop.abort(downloadFailed)
        return 0
      },
      more: () => Promise.reject(downloadFailed),
      settled: () => Promise.reject(downloadFailed),
    }
    const blob = {digest: `sha256:${'a'.repeat(64)}`, size: 4096, mediaType: 'application/octet-stream', from: {registry: 'r', repository: 'x'}, usedBy: []}
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      await withFile(async (out) => {
        const error = await t.throwsAsync(fillTar(out, [{kind: 'blob', offset: 512, blob: blob as never}], {openBlob: async () => file, signal: stop.signal}, false))
        t.is(error, downloadFailed)
      })
      await tick()
      await tick()
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
    t.deepEqual(unhandled, [], 'no promise left rejected without a handler')
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})

/** `handle` with its datasync counted, and made to fail from the `failFrom`-th call on. */
function countingSyncs(handle: Awaited<ReturnType<typeof open>>, failFrom = Infinity): {handle: typeof handle; syncs: () => number} {
  let syncs = 0
  const counted = new Proxy(handle, {
    get(target, name) {
      if (name === 'datasync') {
        return async () => {
          syncs++
          if (syncs >= failFrom) throw Object.assign(new Error('EIO: i/o error, fdatasync'), {code: 'EIO'})
          return target.datasync()
        }
      }
      const value = Reflect.get(target, name, target) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
  return {handle: counted, syncs: () => syncs}
}

test('syncEvery: the written bytes go to disk in the background as they land; flush waits for it; a failed one fails the output', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-tar-out-'))
  try {
    const data = randomBytes(6 * MiB)
    const raw = await open(join(dir, 'a.tar'), 'w+')
    const {handle, syncs} = countingSyncs(raw)
    const out = new TarOut(handle)
    out.syncEvery(2 * MiB)
    // Every 2 MiB written starts one datasync; flush waits for it (one at a time: under load, writes that land while
    // one runs are taken by the next, so only the pauses here make the count exact).
    for (let at = 0; at < data.length; at += MiB) {
      await out.write(data.subarray(at, at + MiB), at)
      if ((at + MiB) % (2 * MiB) === 0) {
        await out.flush()
        t.is(syncs(), (at + MiB) / (2 * MiB), `a datasync per 2 MiB written (after ${(at + MiB) / MiB} MiB)`)
      }
    }
    t.deepEqual(await readFile(join(dir, 'a.tar')), data)
    await raw.close()

    const rawB = await open(join(dir, 'b.tar'), 'w+')
    const failing = countingSyncs(rawB, 1)
    const outB = new TarOut(failing.handle)
    outB.syncEvery(MiB)
    await outB.write(data.subarray(0, MiB), 0)
    const error = await t.throwsAsync(outB.flush())
    t.regex(error!.message, /EIO/)
    await t.throwsAsync(outB.write(data.subarray(0, MiB), MiB), {message: /EIO/}, 'nothing more is written after it')
    await rawB.close()

    const rawC = await open(join(dir, 'c.tar'), 'w+')
    const none = countingSyncs(rawC)
    const outC = new TarOut(none.handle)
    for (let at = 0; at < data.length; at += MiB) await outC.write(data.subarray(at, at + MiB), at)
    await outC.flush()
    t.is(none.syncs(), 0, 'without syncEvery (a build not fsynced) no datasync')
    await rawC.close()
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})
