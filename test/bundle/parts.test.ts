/**
 * Reading a bundle in parts (issue 20): PartedBytes against the whole file byte for byte (reads and streams across
 * part boundaries), verify/inspect of the parts equal to the whole, and every part fault (missing, extra, reordered,
 * truncated, corrupted) refused with the part's name. Parts made by coreutils `split` + `sha256sum`.
 */
import {appendFile, copyFile, mkdtemp, open, readFile, rename, rm, truncate} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import test from 'ava'
import {openBundleBytes, PartedBytes} from '../../src/bundle/parted-bytes.js'
import {inspectBundle} from '../../src/bundle/inspect.js'
import {BundleReader} from '../../src/bundle/reader.js'
import {assertBundleValid, verifyBundle} from '../../src/bundle/verify.js'
import {isKubeferryError} from '../../src/oci/errors.js'
import {makeBundle} from '../load/make-bundle.js'
import {splitBundle, type SplitBundle} from './parts-helpers.js'

const GOOD = new URL('../../../fixtures/bundles/good.tar', import.meta.url).pathname
let big: string
let bigBytes: Buffer

test.before(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-parts-big-'))
  big = join(dir, 'k8s.tar')
  await makeBundle(big, {layerSize: 300_000})
  bigBytes = await readFile(big)
})

/** A part size that splits `size` bytes into at least `n` parts, off the 512-byte tar grid. */
const sizeFor = (size: number, n: number): number => Math.floor(size / n) - 7

test('PartedBytes reads and streams across part boundaries exactly as the whole file', async (t) => {
  const split = await splitBundle(big, sizeFor(bigBytes.length, 5))
  t.true(split.parts.length >= 5, `${split.parts.length} parts`)
  const bytes = await openBundleBytes(split.parts[0])
  t.true(bytes instanceof PartedBytes)
  t.is(bytes.size, bigBytes.length)
  const partSize = (await readFile(split.parts[0])).length
  // Around every boundary, at the ends, and a range spanning three parts.
  const ranges: Array<[number, number]> = [[0, 10], [bytes.size - 10, bytes.size], [partSize - 3, partSize + 3], [partSize * 2 - 1, partSize * 2 + 1], [partSize - 100, partSize * 3 + 100], [0, bytes.size]]
  const reader = await bytes.open()
  try {
    for (const [start, end] of ranges) {
      t.deepEqual(await bytes.read(start, end - start), bigBytes.subarray(start, end), `read ${start}..${end}`)
      t.deepEqual(await reader.read(start, end - start), bigBytes.subarray(start, end), `reader ${start}..${end}`)
      const chunks: Buffer[] = []
      for await (const chunk of bytes.stream(start, end, {highWaterMark: 4096})) chunks.push(chunk as Buffer)
      t.deepEqual(Buffer.concat(chunks), bigBytes.subarray(start, end), `stream ${start}..${end}`)
    }
    t.is((await reader.read(bytes.size - 5, 100)).length, 5, 'a read past the end is short')
  } finally {
    await reader.close()
  }
  // The bundle path itself, with only the parts there, and any part, name the same bytes.
  t.is((await openBundleBytes(split.bundlePath)).size, bigBytes.length)
  t.is((await openBundleBytes(split.parts[2])).size, bigBytes.length)
})

for (const [name, source, n] of [['good.tar', () => GOOD, 4], ['a larger bundle', () => big, 6]] as const) {
  test(`verify and inspect of ${name} in ${n}+ parts give what the whole file gives`, async (t) => {
    const whole = source()
    const split = await splitBundle(whole, sizeFor((await readFile(whole)).length, n))
    t.true(split.parts.length >= n)
    const expected = await verifyBundle(whole)
    for (const path of [split.parts[0], split.bundlePath, split.parts[split.parts.length - 1]]) {
      const got = await verifyBundle(path)
      t.deepEqual({...got, path: whole}, expected, path)
      t.true(got.ok)
      t.deepEqual({...(await inspectBundle(path)), path: whole}, {...(await inspectBundle(whole)), path: whole})
    }
  })
}

/** Copy of the parts with one fault made by `damage`; the error of a parts-checking open (push's, load's check). */
async function refusal(split: SplitBundle, damage: (s: SplitBundle) => Promise<void>, options: {quick?: boolean; checkParts?: boolean} = {checkParts: true, quick: true}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-parts-fault-'))
  const copy: SplitBundle = {dir, bundlePath: join(dir, basename(split.bundlePath)), parts: split.parts.map((p) => join(dir, basename(p)))}
  for (const file of [...split.parts, `${split.bundlePath}.sha256`, join(split.dir, `${basename(split.bundlePath, '.tar')}.parts.sha256`)]) await copyFile(file, join(dir, basename(file)))
  await damage(copy)
  try {
    await assertBundleValid(copy.parts[0], options)
  } catch (error) {
    if (isKubeferryError(error) && error.code === 'BUNDLE_INVALID') return `${error.message} | ${error.hint ?? ''}`
    throw error
  }
  await rm(dir, {recursive: true})
  return 'accepted'
}

const FAULTS: Array<[string, (s: SplitBundle) => Promise<void>, RegExp]> = [
  ['a missing part', (s) => rm(s.parts[2]), /part \S+k8s\.tar\.003 is missing/],
  ['an extra part', (s) => copyFile(s.parts[1], `${s.bundlePath}.${String(s.parts.length + 1).padStart(3, '0')}`), /k8s\.tar\.0\d\d is an extra part/],
  [
    'two parts swapped',
    async (s) => {
      await rename(s.parts[1], `${s.parts[1]}.x`)
      await rename(s.parts[3], s.parts[1])
      await rename(`${s.parts[1]}.x`, s.parts[3])
    },
    /part \S+k8s\.tar\.002 holds the bytes k8s\.parts\.sha256 lists for k8s\.tar\.004/,
  ],
  ['a truncated middle part', (s) => truncate(s.parts[1], 1000), /part \S+k8s\.tar\.002 is 1000 bytes where the other parts are \d+: it is truncated/],
  ['a truncated last part', async (s) => truncate(s.parts[s.parts.length - 1], 100), /part \S+k8s\.tar\.0\d\d does not match its sha256 in k8s\.parts\.sha256/],
  [
    'one byte corrupted',
    async (s) => {
      const handle = await open(s.parts[2], 'r+')
      const byte = Buffer.alloc(1)
      await handle.read(byte, 0, 1, 777)
      await handle.write(Buffer.from([byte[0] ^ 0x01]), 0, 1, 777)
      await handle.close()
    },
    /part \S+k8s\.tar\.003 does not match its sha256 in k8s\.parts\.sha256 .*copy k8s\.tar\.003 again/,
  ],
  ['an oversized parts list (not read into memory)', (s) => appendFile(join(s.dir, 'k8s.parts.sha256'), Buffer.alloc(999 * 512 + 1, 0x0a)), /k8s\.parts\.sha256 is larger than a list of 999 parts can be/],
  ['a last part larger than the others', (s) => appendFile(s.parts[s.parts.length - 1], Buffer.alloc(bigBytes.length)), /part \S+k8s\.tar\.0\d\d is \d+ bytes, larger than the \d+ of the parts before it/],
]

for (const [what, damage, pattern] of FAULTS) {
  test(`${what} is refused, naming the part, with what to do`, async (t) => {
    const split = await splitBundle(big, sizeFor(bigBytes.length, 5))
    const message = await refusal(split, damage)
    t.regex(message, pattern)
    t.regex(message, /sha256sum -c k8s\.parts\.sha256|copy \S+ again/)
  })
}

test('without NAME.parts.sha256: a gap in the parts is refused by name; a short last part is blamed on the last part', async (t) => {
  const split = await splitBundle(big, sizeFor(bigBytes.length, 5), {partsChecksum: false})
  await rename(split.parts[1], `${split.parts[1]}.away`)
  const missing = await t.throwsAsync(BundleReader.open(split.parts[0]))
  t.regex(missing!.message, /part \S+k8s\.tar\.002 is missing \(the parts go up to k8s\.tar\.00\d\)/)
  await rename(`${split.parts[1]}.away`, split.parts[1])
  // The last parts gone: what is left ends inside the tar (a tiny last part of end-of-archive zeros alone would not show).
  await rm(split.parts[split.parts.length - 1])
  await rm(split.parts[split.parts.length - 2])
  const short = await t.throwsAsync(BundleReader.open(split.parts[0]))
  t.regex(short!.message, /the last part may be truncated or parts after it missing/)
})

test('a single-file bundle still reads as one file, and parts beside nothing else do not shadow it', async (t) => {
  const bytes = await openBundleBytes(GOOD)
  t.false(bytes instanceof PartedBytes)
  t.true((await verifyBundle(GOOD, {quick: true})).ok)
})
