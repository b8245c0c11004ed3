/**
 * Under load, measured from outside the process (/proc/<pid>/status VmRSS, /proc/<pid>/fd):
 *  - `kubeferry serve` with 64 concurrent clients for KUBEFERRY_LOAD_SECONDS (default 8) keeps answering every
 *    request correctly (every full blob re-hashed by the client) with bounded RSS and file handles;
 *  - `kubeferry create` of 200 small images (the test builder's many-images mode, pushed into the real registry)
 *    completes with bounded RSS and open file handles, and the bundle verifies.
 */
import test from 'ava'
import {createHash, randomBytes} from 'node:crypto'
import {readdirSync, readFileSync} from 'node:fs'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Agent, request} from 'undici'
import {peerTest} from '../harness/peers.js'
import {buildImageSet} from '../images/builder.js'
import {pushImageSet} from '../images/seed.js'
import {runCli} from '../faults/helpers.js'
import {spawnCli} from '../helpers/cli.js'
import {MANIFEST_ACCEPT} from '../../src/oci/media-types.js'

const SECONDS = Number(process.env.KUBEFERRY_LOAD_SECONDS ?? 8)
const CLIENTS = 64
/** Ceilings, generous for a 2-core CI box but far below what unbounded buffering would reach. */
const SERVE_RSS_LIMIT_MB = 200
const CREATE_RSS_LIMIT_MB = 250
const FD_LIMIT = 256

let work: string
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-load-'))
})
test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

/** RSS in MB and open fds of a live process, or undefined once it is gone. */
function sample(pid: number): {rssMb: number; fds: number} | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024
    return {rssMb: rss, fds: readdirSync(`/proc/${pid}/fd`).length}
  } catch {
    return undefined
  }
}

function monitor(pid: number): {stop: () => {peakRssMb: number; peakFds: number; samples: number}} {
  let peakRssMb = 0
  let peakFds = 0
  let samples = 0
  const timer = setInterval(() => {
    const s = sample(pid)
    if (!s) return
    samples++
    peakRssMb = Math.max(peakRssMb, s.rssMb)
    peakFds = Math.max(peakFds, s.fds)
  }, 50)
  return {
    stop: () => {
      clearInterval(timer)
      return {peakRssMb, peakFds, samples}
    },
  }
}

peerTest('serve: 64 concurrent clients for a bounded time keep getting correct answers, RSS and fds stay bounded', ['registries'], async (t, peers) => {
  const open = peers.registries.open.url
  const bundle = join(work, 'serve.tar')
  const images = ['registry.k8s.io/pause:3.10', 'registry.k8s.io/kube-proxy:v1.31.6', 'registry.k8s.io/coredns/coredns:v1.11.3', 'docker.io/library/busybox:1.36']
  const made = await runCli(['create', ...images.flatMap((i) => ['--image', i]), '--platform', 'linux/amd64', '--platform', 'linux/arm64/v8', '--mirror', `registry.k8s.io=${open}`, '--mirror', `docker.io=${open}`, '--cache-dir', join(work, 'cache'), '--no-progress', '-o', bundle])
  t.is(made.code, 0, made.stderr)

  const serve = spawnCli(['serve', bundle, '--listen', '127.0.0.1:0', '--json'], {stdio: ['ignore', 'pipe', 'pipe']})
  t.teardown(() => {
    if (serve.exitCode === null) serve.kill('SIGKILL')
  })
  let out = ''
  const url = await new Promise<string>((resolve, reject) => {
    serve.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c
      const m = /"url":\s*"([^"]+)"/.exec(out)
      if (m) resolve(m[1])
    })
    serve.on('exit', (code) => reject(new Error(`serve exited ${code}`)))
    setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 60_000)
  })
  serve.stderr!.resume()
  const idle = sample(serve.pid!)!

  // What the clients ask for: every manifest by tag and digest, every blob (hashed on arrival), some ranges.
  const targets: Array<{path: string; digest?: string; size?: number; range?: boolean}> = []
  for (const image of peers.images.filter((i) => images.includes(i.name))) {
    targets.push({path: `/v2/${image.repository}/manifests/${image.tag}`})
    for (const p of image.platforms) {
      targets.push({path: `/v2/${image.repository}/manifests/${p.digest}`, digest: p.digest})
      for (const b of [{digest: p.config, size: p.configSize}, ...p.layers]) {
        targets.push({path: `/v2/${image.repository}/blobs/${b.digest}`, digest: b.digest, size: b.size})
        targets.push({path: `/v2/${image.repository}/blobs/${b.digest}`, size: b.size, range: true})
      }
    }
  }
  const accept = MANIFEST_ACCEPT.join(', ')
  const agent = new Agent({connections: CLIENTS})
  t.teardown(() => agent.close())
  const watch = monitor(serve.pid!)
  const deadline = Date.now() + SECONDS * 1000
  let requests = 0
  let bytes = 0
  const errors: string[] = []
  const client = async (n: number): Promise<void> => {
    let i = n
    while (Date.now() < deadline) {
      const target = targets[i++ % targets.length]
      const range = target.range && target.size! > 10 ? {start: 3, end: Math.min(target.size! - 1, 3 + 4096)} : undefined
      try {
        const res = await request(`${url}${target.path}`, {dispatcher: agent, headers: {accept, ...(range ? {range: `bytes=${range.start}-${range.end}`} : {})}})
        const hash = createHash('sha256')
        let got = 0
        for await (const chunk of res.body) {
          hash.update(chunk as Buffer)
          got += (chunk as Buffer).length
        }
        bytes += got
        requests++
        if (res.statusCode !== (range ? 206 : 200)) errors.push(`${target.path}: HTTP ${res.statusCode}`)
        else if (range && got !== range.end - range.start + 1) errors.push(`${target.path}: range gave ${got} bytes`)
        else if (!range && target.digest && `sha256:${hash.digest('hex')}` !== target.digest) errors.push(`${target.path}: wrong bytes`)
      } catch (error) {
        errors.push(`${target.path}: ${(error as Error).message}`)
      }
    }
  }
  await Promise.all(Array.from({length: CLIENTS}, (_, n) => client(n)))
  const peak = watch.stop()
  const after = sample(serve.pid!)
  t.log(`serve: ${requests} requests (${(requests / SECONDS).toFixed(0)}/s), ${(bytes / 1e6).toFixed(0)} MB in ${SECONDS} s by ${CLIENTS} clients; RSS idle ${idle.rssMb.toFixed(0)} MB, peak ${peak.peakRssMb.toFixed(0)} MB; fds idle ${idle.fds}, peak ${peak.peakFds}`)
  t.deepEqual(errors.slice(0, 5), [], `${errors.length} failed requests`)
  t.true(requests > CLIENTS * 5, `served ${requests} requests`)
  t.true(peak.samples > 10, 'the process was sampled')
  t.true(peak.peakRssMb < SERVE_RSS_LIMIT_MB, `peak RSS ${peak.peakRssMb.toFixed(0)} MB`)
  t.true(peak.peakFds < FD_LIMIT, `peak fds ${peak.peakFds}`)
  t.truthy(after, 'serve is still running after the load')
  // Still answering after the storm, and it stops cleanly on SIGTERM.
  const ping = await request(`${url}/v2/`, {dispatcher: agent})
  await ping.body.dump()
  t.is(ping.statusCode, 200)
  const exited = new Promise<number | null>((resolve) => serve.on('exit', (code) => resolve(code)))
  serve.kill('SIGTERM')
  t.is(await exited, 0)
})

peerTest('create: 200 small images complete with bounded RSS and file handles, and the bundle verifies', ['registries'], async (t, peers) => {
  const count = Number(process.env.KUBEFERRY_LOAD_IMAGES ?? 200)
  const set = await buildImageSet({dir: join(work, 'many-images'), images: [], many: count, platforms: ['linux/amd64'], busybox: false, layerSize: 256, baseLayerSize: 512})
  const prefix = `kf-many-${randomBytes(3).toString('hex')}`
  await pushImageSet(set, {url: peers.registries.open.url}, {prefix, concurrency: 8})
  const list = join(work, 'many.txt')
  await writeFile(list, `${set.images.map((i) => i.name).join('\n')}\n`)
  const bundle = join(work, 'many.tar')
  let watch: ReturnType<typeof monitor> | undefined
  const r = await runCli(['create', '--images-file', list, '--mirror', `registry.k8s.io=${peers.registries.open.url}/${prefix}`, '--cache-dir', join(work, 'many-cache'), '--no-progress', '--json', '-o', bundle], {
    timeoutMs: 240_000,
    onSpawn: (child) => {
      watch = monitor(child.pid!)
    },
  })
  const peak = watch!.stop()
  t.is(r.code, 0, r.stderr.slice(0, 2000))
  const summary = JSON.parse(r.stdout) as {images: number; uniqueBlobs: number; seconds: number}
  t.log(`create: ${summary.images} images, ${summary.uniqueBlobs} blobs in ${summary.seconds.toFixed(1)} s; peak RSS ${peak.peakRssMb.toFixed(0)} MB, peak fds ${peak.peakFds} (${peak.samples} samples)`)
  t.is(summary.images, count)
  t.true(peak.samples > 3, 'the process was sampled')
  t.true(peak.peakRssMb < CREATE_RSS_LIMIT_MB, `peak RSS ${peak.peakRssMb.toFixed(0)} MB`)
  t.true(peak.peakFds < FD_LIMIT, `peak fds ${peak.peakFds}`)
  const verify = await runCli(['verify', bundle])
  t.is(verify.code, 0, verify.stdout + verify.stderr)
})
