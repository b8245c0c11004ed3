/**
 * Resume across runs, as an operator meets it: `kubeferry create` of three images with large layers over a throttled
 * link is stopped with Ctrl-C (SIGINT) part-way through, then run again with the same cache. Prints a transcript and
 * the figure that matters: the bytes the rerun fetched against the bundle's blob bytes. A third, uninterrupted create
 * on a fresh cache gives the reference sha256 the resumed bundle must have.
 *
 * The link is the shaping TCP proxy of bench/shaper.ts; between it and the registry sits the fault proxy of the tests
 * (test/faults/proxy.ts), used here only to count the response bytes of every request.
 *
 *   node dist/bench/resume.js [--layer-mib 157] [--seconds 7] [--stop-at 5] [--rtt-ms 20] [--compare OTHER/bin/run.js]
 *
 * `--seconds` sets the link rate so that the blobs alone take that long; `--stop-at` is when Ctrl-C is sent.
 * `--compare` runs the same interrupted create + rerun with another build (e.g. the previous release) for contrast.
 */
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'
import {buildImageSet} from '../test/images/builder.js'
import {pushImageSet} from '../test/images/seed.js'
import {startRegistry} from '../test/harness/peers/registry.js'
import {stopDaemon} from '../test/harness/proc.js'
import {startFaultProxy, type FaultProxy} from '../test/faults/proxy.js'
import {startShaper} from './shaper.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const {values} = parseArgs({
  options: {
    'layer-mib': {type: 'string', default: '157'},
    seconds: {type: 'string', default: '7'},
    'stop-at': {type: 'string', default: '5'},
    'rtt-ms': {type: 'string', default: '20'},
    compare: {type: 'string'},
  },
})
const NAMES = ['registry.k8s.io/kube-apiserver:v1.31.6', 'registry.k8s.io/kube-controller-manager:v1.31.6', 'registry.k8s.io/kube-scheduler:v1.31.6']
const MB = (n: number): string => `${(n / 1e6).toFixed(1)} MB`
const say = (line: string): void => void process.stdout.write(`${line}\n`)

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  seconds: number
}

/** Run the CLI; with `stopAfterMs`, send SIGINT then (what Ctrl-C does in a terminal). */
function cli(bin: string, args: string[], stopAfterMs?: number): Promise<Run> {
  return new Promise((done, fail) => {
    const started = performance.now()
    const child = spawn(process.execPath, [bin, ...args], {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, SOURCE_DATE_EPOCH: '0'}})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = stopAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGINT'), stopAfterMs)
    child.on('error', fail)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      done({code, signal, stdout, stderr, seconds: (performance.now() - started) / 1000})
    })
  })
}

function blobBytes(proxy: FaultProxy, from: number): number {
  return proxy.log
    .slice(from)
    .filter((entry) => entry.method === 'GET' && /\/blobs\/sha256:/.test(entry.path))
    .reduce((n, entry) => n + entry.bytes, 0)
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

const indent = (text: string): string =>
  text
    .trim()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'kf-bench-resume-'))
  const registry = await startRegistry('resume', join(work, 'registry'), {kind: 'none'})
  const proxy = await startFaultProxy(registry.url)
  try {
    const set = await buildImageSet({dir: join(work, 'images'), only: NAMES, platforms: ['linux/amd64'], busybox: false, layerSize: Math.round(Number(values['layer-mib']) * 1024 * 1024), gzipLevel: 1})
    await pushImageSet(set, {url: registry.url}, {fresh: true})
    const blobs = new Map<string, number>()
    for (const image of set.images) for (const p of image.platforms) for (const b of [{digest: p.config, size: p.configSize}, ...p.layers]) blobs.set(b.digest, b.size)
    const total = [...blobs.values()].reduce((a, b) => a + b, 0)
    const mbit = (total * 8) / 1e6 / Number(values.seconds)
    const proxyPort = Number(new URL(proxy.url).port)
    const shaper = await startShaper({host: '127.0.0.1', port: proxyPort}, {rttMs: Number(values['rtt-ms']), downMbit: mbit})
    const link = `http://127.0.0.1:${shaper.port}`
    const argsFor = (output: string, cache: string, mirror = link): string[] => ['create', ...NAMES.flatMap((n) => ['--image', n]), '--platform', 'linux/amd64', '--mirror', `registry.k8s.io=${mirror}`, '--cache-dir', cache, '--no-progress', '-o', output]

    say(`resume: ${NAMES.length} images, ${blobs.size} blobs, ${MB(total)} of blobs; link ${mbit.toFixed(0)} Mbit/s, RTT ${values['rtt-ms']} ms (blobs alone take ${values.seconds} s); Ctrl-C at ${values['stop-at']} s`)
    const reference = join(work, 'reference.tar')
    const clean = await cli(join(ROOT, 'bin/run.js'), argsFor(reference, join(work, 'reference-cache'), proxy.url))
    if (clean.code !== 0) throw new Error(`reference create failed: ${clean.stderr}`)
    const referenceSha = await sha256(reference)

    const contenders: Array<[string, string]> = [['this build', join(ROOT, 'bin/run.js')], ...(values.compare ? [['compare', resolve(values.compare)] as [string, string]] : [])]
    for (const [label, bin] of contenders) {
      const dir = join(work, label.replace(/\W+/g, '-'))
      const output = join(dir, 'k8s.tar')
      const cache = join(dir, 'cache')
      say('')
      say(`== ${label}: ${bin}`)
      say(`$ kubeferry ${argsFor(output, cache).join(' ')}`)
      let from = proxy.log.length
      const first = await cli(bin, argsFor(output, cache), Number(values['stop-at']) * 1000)
      const firstBytes = blobBytes(proxy, from)
      say(`^C  (SIGINT after ${values['stop-at']} s; exit ${first.code ?? first.signal} after ${first.seconds.toFixed(1)} s)`)
      if (first.stderr.trim()) say(indent(first.stderr))
      say(`    [link: the first run received ${MB(firstBytes)} of ${MB(total)} of blobs before it stopped]`)
      say(`$ kubeferry ${argsFor(output, cache).join(' ')}`)
      from = proxy.log.length
      const again = await cli(bin, argsFor(output, cache))
      const againBytes = blobBytes(proxy, from)
      if (again.stdout.trim()) say(indent(again.stdout))
      if (again.stderr.trim()) say(indent(again.stderr))
      const sha = again.code === 0 ? await sha256(output) : 'none'
      say(`    [link: the rerun fetched ${MB(againBytes)} of ${MB(total)} (${((againBytes / total) * 100).toFixed(1)} %) in ${again.seconds.toFixed(1)} s; bundle sha256 ${sha === referenceSha ? 'identical to' : 'DIFFERENT from'} an uninterrupted create (${referenceSha.slice(0, 16)}…)]`)
      process.stderr.write(`${JSON.stringify({label, totalBytes: total, firstRunBytes: firstBytes, rerunBytes: againBytes, rerunShare: Number((againBytes / total).toFixed(4)), identical: sha === referenceSha})}\n`)
    }
    await shaper.close()
  } finally {
    await proxy.close()
    await stopDaemon(registry.process)
    await rm(work, {recursive: true, force: true})
  }
}

await main()
