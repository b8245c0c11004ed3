/** The download scheduler of `create` on its own, with a scripted store: order, priority, idle and failure. */
import test from 'ava'
import {Downloads} from '../../src/bundle/downloads.js'
import type {ImageSource} from '../../src/bundle/plan.js'
import type {Digest} from '../../src/oci/digest.js'
import type {BlobStore} from '../../src/store/blob-store.js'
import {parseReference} from '../../src/oci/reference.js'

const from = parseReference('registry.k8s.io/pause:3.10')
const digest = (n: number): Digest => `sha256:${n.toString(16).padStart(64, '0')}`
const blob = (n: number) => ({digest: digest(n), size: 1, from})

/** A store whose ingest of each digest waits until the test releases it; `cached` digests are hits. */
function scriptedStore(cached: Set<Digest> = new Set()) {
  const started: Digest[] = []
  const release = new Map<Digest, (error?: Error) => void>()
  const store = {
    has: async (desc: {digest: Digest}) => cached.has(desc.digest),
    ingest: (desc: {digest: Digest}, _open: unknown, options: {signal: AbortSignal}) => {
      started.push(desc.digest)
      return new Promise((resolve, reject) => {
        release.set(desc.digest, (error) => (error ? reject(error) : resolve({path: '', downloaded: true})))
        options.signal.addEventListener('abort', () => reject(options.signal.reason), {once: true}) // as the real store does
      })
    },
  } as unknown as BlobStore
  return {store, started, release}
}
const source = {} as ImageSource
const tick = () => new Promise((resolve) => setImmediate(resolve))

test('at most `concurrency` at once; queued ones in tar order after reorder, whatever order the copiers ask in', async (t) => {
  const {store, started, release} = scriptedStore()
  const downloads = new Downloads(store, source, 2, new AbortController())
  for (const n of [5, 4, 3, 2, 1]) downloads.want(blob(n))
  await tick()
  t.deepEqual(started, [digest(5), digest(4)])
  downloads.reorder((a, b) => (a < b ? -1 : 1)) // queue: 1, 2, 3
  // The writer's copiers ask for several fills at once; moving each to the front would reverse the queue.
  for (const n of [1, 2, 3]) void downloads.fillOf(digest(n))
  release.get(digest(5))!()
  await tick()
  t.is(started[2], digest(1))
  release.get(digest(4))!()
  await tick()
  t.is(started[3], digest(2))
  for (const n of [1, 2]) release.get(digest(n))!()
  await tick()
  t.is(started[4], digest(3))
  release.get(digest(3))!()
  await downloads.drained()
  t.is(downloads.downloadedBlobs, 5)
})

test('cached blobs are not fetched; drained() waits for lookups and downloads; a failure reaches every waiter', async (t) => {
  const {store, started, release} = scriptedStore(new Set([digest(1)]))
  const downloads = new Downloads(store, source, 4, new AbortController())
  downloads.want(blob(1))
  downloads.want(blob(2))
  downloads.want(blob(3))
  t.true(await downloads.wasCached(digest(1)))
  t.is(await downloads.fillOf(digest(1)), undefined)
  let drained = false
  const done = downloads.drained().then(
    () => (drained = true),
    (error: Error) => error,
  )
  await tick()
  t.false(drained)
  t.deepEqual(started, [digest(2), digest(3)])
  release.get(digest(2))!(new Error('connection reset (injected)'))
  const error = (await done) as Error
  t.regex(error.message, /connection reset/)
  await t.throwsAsync(downloads.fillOf(digest(3)), {message: /connection reset/})
  downloads.want(blob(9)) // after a failure: settled at once with it
  await t.throwsAsync(downloads.wasCached(digest(9)), {message: /connection reset/})
})
