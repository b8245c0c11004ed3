/**
 * Pull throughput of `kubeferry serve` vs docker-registry (distribution 2.8) serving the same images, with 8
 * concurrent clients, and serve's RSS under that load.
 *
 * Both servers hold the same image set (the test image builder's kubeadm v1.31.6 set, 2 platforms, layers of
 * LAYER_MB): serve from one bundle tar, the registry after a push into its own storage. Each of CLIENTS clients
 * pulls every image like a node does (index → platform manifest → config and layers), one request at a time on its
 * own connection, reading every byte. Rounds alternate between the servers; the best round of each is compared.
 *
 *   node dist/bench/serve.js [--layer-mb 8] [--clients 8] [--rounds 3] [--compare OTHER/bin/run.js]
 *
 * `--compare` also serves the same bundle with a second kubeferry (e.g. the previous build) in the same alternating
 * rounds, for before/after figures. `--parts N` serves the same bundle split by coreutils into N parts (issue 20) as
 * the compared contender instead (partsToWhole: its throughput over the one file's).
 */
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {readFileSync, statSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'
import {Agent, request} from 'undici'
import {buildImageSet} from '../test/images/builder.js'
import {pushImageSet} from '../test/images/seed.js'
import {startRegistry} from '../test/harness/peers/registry.js'
import {stopDaemon} from '../test/harness/proc.js'
import type {TestImage} from '../test/harness/peers.js'
import {makeBundle} from '../test/serve/make-bundle.js'
import {MANIFEST_ACCEPT} from '../src/oci/media-types.js'

const ACCEPT = MANIFEST_ACCEPT.join(', ')

const {values} = parseArgs({
  options: {
    'layer-mb': {type: 'string', default: '8'},
    clients: {type: 'string', default: '8'},
    rounds: {type: 'string', default: '3'},
    compare: {type: 'string'},
    parts: {type: 'string'},
  },
})
const layerMb = Number(values['layer-mb'])
const clients = Number(values.clients)
const rounds = Number(values.rounds)

async function fetchAll(url: string, agent: Agent, headers: Record<string, string> = {}): Promise<{bytes: number; body?: Buffer}> {
  const response = await request(url, {dispatcher: agent, headers})
  if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode}`)
  const keep = (response.headers['content-type'] ?? '').toString().includes('json')
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    bytes += chunk.length
    if (keep) chunks.push(chunk)
  }
  return {bytes, ...(keep ? {body: Buffer.concat(chunks)} : {})}
}

/** One node pulling every image: index, each platform manifest, config, layers. Returns bytes read. */
async function pullAll(base: string, images: TestImage[]): Promise<number> {
  const agent = new Agent({connections: 1})
  let total = 0
  try {
    for (const image of images) {
      const index = await fetchAll(`${base}/v2/${image.repository}/manifests/${image.tag}`, agent, {accept: ACCEPT})
      total += index.bytes
      const parsed = JSON.parse(index.body!.toString()) as {manifests: Array<{digest: string}>}
      for (const entry of parsed.manifests) {
        const manifest = await fetchAll(`${base}/v2/${image.repository}/manifests/${entry.digest}`, agent, {accept: ACCEPT})
        total += manifest.bytes
        const m = JSON.parse(manifest.body!.toString()) as {config: {digest: string}; layers: Array<{digest: string}>}
        for (const blob of [m.config, ...m.layers]) total += (await fetchAll(`${base}/v2/${image.repository}/blobs/${blob.digest}`, agent)).bytes
      }
    }
  } finally {
    await agent.close()
  }
  return total
}

function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
  } catch {
    return 0
  }
}

async function measure(base: string, images: TestImage[], pid: number): Promise<{seconds: number; bytes: number; peakRss: number}> {
  let peakRss = rssOf(pid)
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(pid))), 50)
  const started = process.hrtime.bigint()
  const totals = await Promise.all(Array.from({length: clients}, () => pullAll(base, images)))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  clearInterval(sampler)
  return {seconds, bytes: totals.reduce((a, b) => a + b, 0), peakRss: Math.max(peakRss, rssOf(pid))}
}

async function startServe(bundle: string, bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url))): Promise<{child: ChildProcess; url: string}> {
  const child = spawn(process.execPath, [bin, 'serve', bundle, '--listen', '127.0.0.1:0', '--json'], {stdio: ['ignore', 'pipe', 'ignore']})
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const nl = out.indexOf('\n')
      if (nl !== -1) resolve((JSON.parse(out.slice(0, nl)) as {url: string}).url)
    })
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}`)))
  })
  return {child, url}
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1)

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-bench-serve-'))
  let serve: {child: ChildProcess; url: string} | undefined
  let compare: {child: ChildProcess; url: string} | undefined
  let registry: Awaited<ReturnType<typeof startRegistry>> | undefined
  try {
    const set = await buildImageSet({dir: join(dir, 'images'), layerSize: layerMb * 1024 * 1024, gzipLevel: 1, busybox: false})
    const bundle = join(dir, 'bench.tar')
    await makeBundle({output: bundle, layout: {dir: set.dir, images: set.images}})
    registry = await startRegistry('bench-registry', join(dir, 'registry'), {kind: 'none'})
    await pushImageSet(set, {url: registry.url})
    serve = await startServe(bundle)
    if (values.parts) {
      // The same bundle as N plain byte ranges beside nothing else, as an operator's `split` makes them.
      const partsDir = join(dir, 'parts')
      const size = statSync(bundle).size
      execFileSync('sh', ['-c', `mkdir -p ${partsDir} && split -b ${Math.ceil(size / Number(values.parts))} -d -a 3 --numeric-suffixes=1 ${bundle} ${partsDir}/bench.tar.`])
      compare = await startServe(join(partsDir, 'bench.tar.001'))
    } else if (values.compare) compare = await startServe(bundle, values.compare)
    const servePid = serve.child.pid!
    const registryPid = registry.process.pid

    // warm both (page cache, connections), then alternate rounds
    await pullAll(serve.url, set.images)
    await pullAll(registry.url, set.images)
    if (compare) await pullAll(compare.url, set.images)
    const results = {serve: [] as Awaited<ReturnType<typeof measure>>[], registry: [] as Awaited<ReturnType<typeof measure>>[], compare: [] as Awaited<ReturnType<typeof measure>>[]}
    for (let round = 0; round < rounds; round++) {
      results.serve.push(await measure(serve.url, set.images, servePid))
      results.registry.push(await measure(registry.url, set.images, registryPid))
      if (compare) results.compare.push(await measure(compare.url, set.images, compare.child.pid!))
    }
    const best = (list: Awaited<ReturnType<typeof measure>>[]) => list.reduce((a, b) => (a.bytes / a.seconds >= b.bytes / b.seconds ? a : b))
    const s = best(results.serve)
    const r = best(results.registry)
    const serveRate = s.bytes / s.seconds
    const registryRate = r.bytes / r.seconds
    const summary = {
      machine: {cpus: (await import('node:os')).cpus().length, node: process.version},
      images: set.images.length,
      layerMb,
      clients,
      rounds,
      bytesPerRound: s.bytes,
      serve: {mbPerSecond: Number(mb(serveRate)), seconds: Number(s.seconds.toFixed(2)), peakRssMb: Number(mb(Math.max(...results.serve.map((x) => x.peakRss))))},
      registry: {mbPerSecond: Number(mb(registryRate)), seconds: Number(r.seconds.toFixed(2)), peakRssMb: Number(mb(Math.max(...results.registry.map((x) => x.peakRss))))},
      ratio: Number((serveRate / registryRate).toFixed(2)),
      ...(compare
        ? (() => {
            const c = best(results.compare)
            const rate = c.bytes / c.seconds
            return {compare: {bin: values.parts ? `this build, ${values.parts} parts` : values.compare, mbPerSecond: Number(mb(rate)), seconds: Number(c.seconds.toFixed(2)), peakRssMb: Number(mb(Math.max(...results.compare.map((x) => x.peakRss)))), ratioToRegistry: Number((rate / registryRate).toFixed(2)), thisToCompare: Number((serveRate / rate).toFixed(2)), ...(values.parts ? {partsToWhole: Number((rate / serveRate).toFixed(2))} : {})}}
          })()
        : {}),
    }
    process.stdout.write(`${JSON.stringify(summary)}\n`)
    process.stderr.write(
      `serve ${mb(serveRate)} MB/s vs docker-registry ${mb(registryRate)} MB/s with ${clients} clients (${mb(s.bytes)} MB per round): ratio ${summary.ratio} (target >= 0.8); serve peak RSS ${summary.serve.peakRssMb} MB (registry ${summary.registry.peakRssMb} MB)\n`,
    )
  } finally {
    for (const server of [serve, compare]) {
      if (server?.child.pid && server.child.exitCode === null) {
        process.kill(server.child.pid, 'SIGTERM')
        await new Promise((resolve) => server.child.once('exit', resolve))
      }
    }
    if (registry) await stopDaemon(registry.process)
    await rm(dir, {recursive: true, force: true})
  }
}

await main()
