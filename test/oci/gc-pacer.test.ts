/** The byte-paced young-generation collection (src/util/gc-pacer.ts), and digestOfStream (src/oci/digest.ts), which feeds it. */
import test from 'ava'
import {Readable} from 'node:stream'
import {GcPacer, streamed, v8MinorGc} from '../../src/oci/gc-pacer.js'

test('collects once per full interval of bytes streamed, not per chunk', (t) => {
  let collections = 0
  const pacer = new GcPacer(() => collections++, 1000)
  for (let i = 0; i < 25; i++) pacer.streamed(100) // 2,500 bytes
  t.is(collections, 2)
  pacer.streamed(499)
  t.is(collections, 2)
  pacer.streamed(1)
  t.is(collections, 3)
})

test('a collector that throws is dropped, and the stream goes on', (t) => {
  let calls = 0
  const pacer = new GcPacer(() => {
    calls++
    throw new Error('gc options changed')
  }, 10)
  t.notThrows(() => pacer.streamed(10))
  t.notThrows(() => pacer.streamed(10))
  t.is(calls, 1)
})

test('without a collector it does nothing', (t) => {
  const pacer = new GcPacer(undefined, 1)
  t.notThrows(() => pacer.streamed(10))
})

test('V8\'s minor gc is reachable on this Node.js (else the pacer is a silent no-op), without a global gc', (t) => {
  const collect = v8MinorGc()
  t.is(typeof collect, 'function', `no gc on Node.js ${process.version}: streaming RSS is no longer paced`)
  t.notThrows(() => collect!())
  t.is((globalThis as {gc?: unknown}).gc, undefined)
  for (let i = 0; i < 1024; i++) streamed(64 * 1024) // the shared pacer: four real collections
})

test('digestOfStream: the sha256 and length of the whole stream, each chunk reported', async (t) => {
  const {digestOfStream, sha256Digest} = await import('../../src/oci/digest.js')
  const chunks = [Buffer.from('hello '), Buffer.alloc(0), Buffer.from('world')]
  const seen: number[] = []
  const result = await digestOfStream(Readable.from(chunks), (n) => seen.push(n))
  t.deepEqual(result, {digest: sha256Digest('hello world'), size: 11})
  t.deepEqual(seen, [6, 0, 5])
})
