/**
 * Resume inside a layer, across runs: `kubeferry create` is stopped mid-layer (kill -9, Ctrl-C), then run again on
 * the same cache. The rerun must fetch only what the first run had not kept (counted in bytes at the proxy), never
 * take a partial blob as complete, and write a bundle byte-identical to a clean build. Images with 12 MiB layers are
 * pushed into the real open registry (which honours Range); a fault proxy in front of it slows the first run, counts
 * the bytes each request carried, and plays a registry that ignores Range.
 */
import test, {type ExecutionContext} from 'ava'
import {createHash} from 'node:crypto'
import {existsSync, readFileSync, statSync} from 'node:fs'
import {appendFile, mkdir, mkdtemp, open, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {loadPeers, missingPeer, needPeers} from '../harness/peers.js'
import {buildImageSet} from '../images/builder.js'
import {blobPath as layoutBlobPath} from '../images/layer.js'
import {pushImageSet} from '../images/seed.js'
import type {CliOptions} from '../helpers/cli.js'
import {runCli, sha256File, type CliResult} from './helpers.js'
import {startFaultProxy, type FaultProxy, type Rule} from './proxy.js'

const NAMES = ['registry.k8s.io/kube-apiserver:v1.31.6', 'registry.k8s.io/kube-proxy:v1.31.6', 'registry.k8s.io/etcd:3.5.15-0']
const LAYER_BYTES = 12 * 1024 * 1024
const BLOB_GET = /\/blobs\/(sha256:[a-f0-9]{64})$/

let work: string
let proxy: FaultProxy | undefined
let images: string[] = []
let reference: {sha: string; sizes: Map<string, number>; total: number} | undefined

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-create-resume-'))
  const peers = loadPeers()
  if (missingPeer(['registries']) || !peers) return
  const dir = join(work, 'images')
  const set = await buildImageSet({dir, only: NAMES, platforms: ['linux/amd64'], layerSize: LAYER_BYTES, gzipLevel: 1, busybox: false})
  const prefix = `kf-resume-${process.pid}`
  await pushImageSet({images: set.images, blobPath: (d) => layoutBlobPath(join(dir, 'blobs'), d)}, {url: peers.registries.open.url}, {prefix})
  proxy = await startFaultProxy(peers.registries.open.url)
  images = set.images.map((i) => `${proxy!.host}/${prefix}/${i.repository}:${i.tag}`)
  // The reference: one uninterrupted create through the same proxy (the image names hold its address).
  const from = proxy.log.length
  const r = await create(join(work, 'reference.tar'), join(work, 'reference-cache'))
  if (r.code !== 0) throw new Error(`reference create failed: ${r.stderr}`)
  const sizes = new Map<string, number>()
  for (const entry of proxy.log.slice(from)) {
    const m = BLOB_GET.exec(entry.path)
    if (m && entry.method === 'GET') sizes.set(m[1], entry.bytes)
  }
  reference = {sha: await sha256File(join(work, 'reference.tar')), sizes, total: [...sizes.values()].reduce((a, b) => a + b, 0)}
})

test.after.always(async () => {
  await proxy?.close()
  if (work) await rm(work, {recursive: true, force: true})
})

/** The cases share one proxy (its rules and its log): one at a time. */
function serialPeerTest(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  test.serial(title, async (t) => {
    if (!needPeers(t, 'registries')) return
    await fn(t)
  })
}

function create(output: string, cache: string, onSpawn?: CliOptions['onSpawn']): Promise<CliResult> {
  return runCli(['create', ...images.flatMap((i) => ['--image', i]), '--platform', 'linux/amd64', '--cache-dir', cache, '--no-progress', '--json', '-o', output], {onSpawn, timeoutMs: 120_000})
}

const slowBlobs: Rule = {name: 'slow', method: 'GET', path: BLOB_GET, fault: {kind: 'trickle', chunkBytes: 64 * 1024, delayMs: 10}}

/** Bytes of blob bodies the proxy sent since log index `from`, per digest. */
function blobBytesSince(from: number): Map<string, {bytes: number; ranged: number; full: number}> {
  const out = new Map<string, {bytes: number; ranged: number; full: number}>()
  for (const entry of proxy!.log.slice(from)) {
    const m = BLOB_GET.exec(entry.path)
    if (!m || entry.method !== 'GET') continue
    const seen = out.get(m[1]) ?? {bytes: 0, ranged: 0, full: 0}
    seen.bytes += entry.bytes
    if (entry.range) seen.ranged++
    else seen.full++
    out.set(m[1], seen)
  }
  return out
}

const sum = (values: Iterable<number>): number => [...values].reduce((a, b) => a + b, 0)

/** Bytes kept of each layer or config in the cache's tmp/ (a partial or a killed run's temp file), by digest. */
async function keptBytes(cache: string): Promise<Map<string, number>> {
  const kept = new Map<string, number>()
  const dir = join(cache, 'tmp')
  for (const name of existsSync(dir) ? await readdir(dir) : []) {
    const digest = `sha256:${name.split('.')[0]}`
    if (reference!.sizes.has(digest)) kept.set(digest, statSync(join(dir, name), {throwIfNoEntry: false})?.size ?? 0)
  }
  return kept
}

async function storedBlobs(t: ExecutionContext, cache: string): Promise<Set<string>> {
  const dir = join(cache, 'blobs', 'sha256')
  const names = existsSync(dir) ? await readdir(dir) : []
  for (const name of names) t.is(createHash('sha256').update(readFileSync(join(dir, name))).digest('hex'), name, `stored blob ${name.slice(0, 12)} is whole`)
  return new Set(names.map((n) => `sha256:${n}`))
}

/** Run create slowly and stop it with `signal` once `fraction` of the blob bytes are on disk in tmp/. */
async function interrupted(t: ExecutionContext, name: string, signal: NodeJS.Signals, fraction = 0.4): Promise<{cache: string; output: string; first: CliResult}> {
  const d = join(work, name)
  await mkdir(d, {recursive: true})
  const cache = join(d, 'cache')
  const output = join(d, 'bundle.tar')
  proxy!.setRules([slowBlobs])
  const first = await create(output, cache, (child) => {
    const poll = setInterval(() => {
      void keptBytes(cache).then((kept) => {
        if (sum(kept.values()) < fraction * reference!.total || child.exitCode !== null) return
        clearInterval(poll)
        child.kill(signal)
      })
    }, 50)
    child.once('exit', () => clearInterval(poll))
  })
  proxy!.setRules([])
  t.false(existsSync(output), `${name}: nothing under the final name after the interruption`)
  return {cache, output, first}
}

async function rerun(t: ExecutionContext, cache: string, output: string, rules: Rule[] = []): Promise<{r: CliResult; fetched: ReturnType<typeof blobBytesSince>; summary: Record<string, number>}> {
  proxy!.setRules(rules)
  const from = proxy!.log.length
  const r = await create(output, cache)
  proxy!.setRules([])
  t.is(r.code, 0, r.stderr)
  t.is(await sha256File(output), reference!.sha, 'byte-identical to a clean build')
  t.deepEqual(await readdir(join(cache, 'tmp')), [], 'no partial or temp file left')
  return {r, fetched: blobBytesSince(from), summary: JSON.parse(r.stdout) as Record<string, number>}
}

/** What a rerun must fetch: each blob not yet stored, from where its kept bytes end (or whole, when Range is ignored). */
function expectedFetch(stored: Set<string>, kept: Map<string, number>, honoursRange: boolean): number {
  let bytes = 0
  for (const [digest, size] of reference!.sizes) if (!stored.has(digest)) bytes += size - (honoursRange ? (kept.get(digest) ?? 0) : 0)
  return bytes
}

serialPeerTest('kill -9 mid-layer, rerun: fetches only what was not kept (Range), bundle identical', async (t) => {
  t.truthy(reference)
  const {cache, output, first} = await interrupted(t, 'kill9', 'SIGKILL')
  t.is(first.signal, 'SIGKILL')
  const stored = await storedBlobs(t, cache)
  const kept = await keptBytes(cache)
  const keptTotal = sum(kept.values())
  t.true(keptTotal > 0.3 * reference!.total, `kept ${keptTotal} of ${reference!.total}`)
  const {fetched, summary} = await rerun(t, cache, output)
  const rerunBytes = sum([...fetched.values()].map((f) => f.bytes))
  t.log(`kill -9: kept ${keptTotal} B, rerun fetched ${rerunBytes} B of ${reference!.total} B of blobs`)
  t.is(rerunBytes, expectedFetch(stored, kept, true))
  t.true(rerunBytes < reference!.total - 0.3 * reference!.total)
  t.is(summary.resumedBytes, sum([...kept].filter(([d]) => !stored.has(d)).map(([, n]) => n)))
  t.is(summary.downloadedBytes, rerunBytes)
})

serialPeerTest('Ctrl-C mid-layer keeps .partial files (never under blobs/), rerun continues them, bundle identical', async (t) => {
  t.truthy(reference)
  const {cache, output, first} = await interrupted(t, 'sigint', 'SIGINT')
  t.is(first.code, 130, first.stderr)
  const stored = await storedBlobs(t, cache)
  const names = await readdir(join(cache, 'tmp'))
  t.true(names.length > 0 && names.every((n) => /^[a-f0-9]{64}\.partial$/.test(n)), names.join(', '))
  for (const n of names) t.false(stored.has(`sha256:${n.split('.')[0]}`), 'a partial blob is not in blobs/')
  const kept = await keptBytes(cache)
  const {fetched} = await rerun(t, cache, output)
  const rerunBytes = sum([...fetched.values()].map((f) => f.bytes))
  t.log(`SIGINT: kept ${sum(kept.values())} B, rerun fetched ${rerunBytes} B of ${reference!.total} B of blobs`)
  t.is(rerunBytes, expectedFetch(stored, kept, true))
  for (const digest of kept.keys()) if (kept.get(digest)! > 0) t.is(fetched.get(digest)?.ranged, 1, `${digest.slice(7, 19)} continued with one Range request`)
})

serialPeerTest('a registry that ignores Range: the rerun downloads the kept blobs whole, bundle identical', async (t) => {
  t.truthy(reference)
  const {cache, output} = await interrupted(t, 'no-range', 'SIGINT')
  const stored = await storedBlobs(t, cache)
  const kept = await keptBytes(cache)
  t.true(kept.size > 0)
  const {fetched, summary} = await rerun(t, cache, output, [{name: 'no-range', method: 'GET', path: BLOB_GET, fault: {kind: 'ignore-range'}}])
  const rerunBytes = sum([...fetched.values()].map((f) => f.bytes))
  t.is(rerunBytes, expectedFetch(stored, kept, false))
  t.is(summary.resumedBlobs, 0)
  for (const digest of kept.keys()) t.is(fetched.get(digest)?.full ?? 0, 0, 'asked with Range (the proxy dropped it)')
})

serialPeerTest('a kept partial with a corrupt byte: the digest fails, it is fetched again from 0 once, bundle identical', async (t) => {
  t.truthy(reference)
  const {cache, output} = await interrupted(t, 'corrupt', 'SIGINT')
  const kept = await keptBytes(cache)
  const [victim, length] = [...kept].sort((a, b) => b[1] - a[1])[0]
  const file = await open(join(cache, 'tmp', `${victim.slice(7)}.partial`), 'r+')
  const byte = Buffer.alloc(1)
  await file.read(byte, 0, 1, Math.floor(length / 2))
  byte[0] ^= 0xff
  await file.write(byte, 0, 1, Math.floor(length / 2))
  await file.close()
  const {fetched} = await rerun(t, cache, output)
  const seen = fetched.get(victim)!
  t.deepEqual({ranged: seen.ranged, full: seen.full}, {ranged: 1, full: 1}, 'one continued attempt, then one whole download')
  t.is(seen.bytes, reference!.sizes.get(victim)! - length + reference!.sizes.get(victim)!)
})

serialPeerTest('a kept partial longer than the blob is discarded; two creates at once on one cache both succeed', async (t) => {
  t.truthy(reference)
  const {cache, output} = await interrupted(t, 'long-and-twice', 'SIGINT')
  const kept = await keptBytes(cache)
  const [victim] = [...kept.keys()]
  await appendFile(join(cache, 'tmp', `${victim.slice(7)}.partial`), Buffer.alloc(reference!.sizes.get(victim)!))
  proxy!.setRules([slowBlobs]) // both runs overlap for a while
  const from = proxy!.log.length
  const second = `${output}.second.tar`
  const [a, b] = await Promise.all([create(output, cache), create(second, cache)])
  proxy!.setRules([])
  t.is(a.code, 0, a.stderr)
  t.is(b.code, 0, b.stderr)
  t.is(await sha256File(output), reference!.sha)
  t.is(await sha256File(second), reference!.sha)
  t.deepEqual(await readdir(join(cache, 'tmp')), [])
  const fetched = blobBytesSince(from)
  const victimGets = fetched.get(victim)
  t.truthy(victimGets)
  t.is(victimGets!.ranged, 0, 'the over-long partial was not continued')
  // Each partial was continued by at most one of the two runs (the claim is an atomic rename).
  for (const [digest] of kept) t.true((fetched.get(digest)?.ranged ?? 0) <= 1, digest)
})
