/**
 * push vs `skopeo copy` of the same images into the same kind of registry, a re-push of a complete registry, and a
 * floor: a raw parallel upload of the same blobs (no checks, no manifests, no verification) — what the registry
 * itself costs. Starts its own docker-registry processes, stopped by PID.
 *   node dist/bench/push.js [runs=5] [layerMiB=8] [--rtt-ms MS --mbit MBIT]
 *
 * With --rtt-ms, every contender reaches its registry through the shaping proxy of bench/shaper.ts (RTT/2 each way,
 * one RTT per new connection, --mbit each way shared by all connections; default 100): the internal registry on
 * another host, not on the same two cores as the client.
 *
 * Fair and robust: every contender gets a FRESH docker-registry (empty storage, new port) in every run, so each does
 * the same work (no blob already there, no skopeo blob-info-cache mount from an earlier run's repositories); runs
 * are interleaved (the order of contenders rotates each run) and figures are medians, because the machine is
 * shared. kubeferry is timed as a whole process (node + oclif start-up included) and by its own report
 * (`durationMs`: push's work only), so start-up and push effects are both visible. The registry's own CPU time
 * (/proc) is recorded per contender: it is the same bytes to hash and store whoever sends them.
 * Prints one JSON document.
 *
 * A/B of two builds: KUBEFERRY_BENCH_BASELINE=/other/checkout/bin/run.js adds a `baseline` contender (that CLI's push,
 * same conditions), e.g. a `git archive` of the previous commit, built.
 */
import {execFile} from 'node:child_process'
import {createReadStream} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rm, stat} from 'node:fs/promises'
import {cpus, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {parseArgs, promisify} from 'node:util'
import {Agent, request} from 'undici'
import {buildImageSet} from '../test/images/builder.js'
import {pushImageSet} from '../test/images/seed.js'
import {startRegistry, type StartedRegistry} from '../test/harness/peers/registry.js'
import {stopDaemon} from '../test/harness/proc.js'
import {projectRoot} from '../test/helpers/cli.js'
import {bundleIndex} from '../test/push/helpers.js'
import {startShaper, type LinkOptions, type Shaper} from './shaper.js'
import {benchCli, cliArgv} from './cli.js'

const exec = promisify(execFile)

interface PushJson {
  blobs: {uploaded: number; bytesUploaded: number}
  durationMs: number
}

interface Sample {
  ms: number
  registryCpuMs: number
  internalMs?: number
}

async function timed<T>(fn: () => Promise<T>): Promise<{ms: number; value: T}> {
  const t0 = performance.now()
  const value = await fn()
  return {ms: Math.round(performance.now() - t0), value}
}

/** user+system CPU of a process so far, in ms (Linux /proc; clock ticks are 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** This checkout's CLI; the baseline's is another checkout's bin/run.js (A/B of two builds, both under this node). */
const CLI = benchCli(projectRoot)

async function kubeferry(args: string[], cli = CLI): Promise<string> {
  const {stdout} = await exec(...cliArgv(cli, args), {maxBuffer: 64 << 20})
  return stdout
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : Math.round((sorted[mid - 1] + sorted[mid]) / 2)
}

function summary(samples: number[]): {median: number; min: number; max: number; runs: number[]} {
  return {median: median(samples), min: Math.min(...samples), max: Math.max(...samples), runs: samples}
}

/** The floor: POST + monolithic PUT of every blob of the layout, 8 at a time, largest first, nothing else. */
async function rawUpload(host: string, layout: string, repository: string): Promise<void> {
  const dir = join(layout, 'blobs', 'sha256')
  const blobs = await Promise.all((await readdir(dir)).map(async (hex) => ({hex, path: join(dir, hex), size: (await stat(join(dir, hex))).size})))
  blobs.sort((a, b) => b.size - a.size)
  const agent = new Agent()
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < blobs.length) {
      const blob = blobs[next++]
      const start = await request(`http://${host}/v2/${repository}/blobs/uploads/`, {method: 'POST', headers: {'content-length': '0'}, dispatcher: agent})
      await start.body.dump()
      const location = new URL(String(start.headers.location), `http://${host}`)
      location.searchParams.set('digest', `sha256:${blob.hex}`)
      const body = createReadStream(blob.path, {highWaterMark: 1024 * 1024})
      const put = await request(location, {method: 'PUT', headers: {'content-type': 'application/octet-stream', 'content-length': String(blob.size)}, body, dispatcher: agent})
      await put.body.dump()
      if (put.statusCode !== 201) throw new Error(`raw upload of ${blob.hex}: HTTP ${put.statusCode}`)
    }
  }
  try {
    await Promise.all(Array.from({length: 8}, worker))
  } finally {
    await agent.close()
  }
}

/** A registry as a contender reaches it: `host` is the registry itself, or the shaping proxy in front of it. */
interface Target {
  reg: StartedRegistry
  host: string
  shaper?: Shaper
}

async function main(): Promise<void> {
  const {values, positionals} = parseArgs({allowPositionals: true, options: {'rtt-ms': {type: 'string'}, mbit: {type: 'string', default: '100'}}})
  const runs = Math.max(1, Number(positionals[0] ?? 5))
  const layerMiB = Number(positionals[1] ?? 8)
  const link: LinkOptions | undefined = values['rtt-ms'] === undefined ? undefined : {rttMs: Number(values['rtt-ms']), downMbit: Number(values.mbit), upMbit: Number(values.mbit)}
  const loadAtStart = loadavg().map((l) => Number(l.toFixed(2)))
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-bench-push-'))
  const started: StartedRegistry[] = []
  const fresh = async (name: string): Promise<StartedRegistry> => {
    const reg = await startRegistry(name, join(dir, `${name}-${started.length}`), {kind: 'none'})
    started.push(reg)
    return reg
  }
  const stop = async (reg: StartedRegistry): Promise<void> => {
    await stopDaemon(reg.process, 2000)
    started.splice(started.indexOf(reg), 1)
  }
  const freshTarget = async (name: string): Promise<Target> => {
    const reg = await fresh(name)
    if (!link) return {reg, host: reg.host}
    const shaper = await startShaper({host: '127.0.0.1', port: Number(reg.host.split(':')[1])}, link)
    return {reg, host: `127.0.0.1:${shaper.port}`, shaper}
  }
  try {
    const source = await fresh('bench-source')
    const set = await buildImageSet({dir: join(dir, 'images'), layerSize: layerMiB * 1024 * 1024, gzipLevel: 1, busybox: false})
    await pushImageSet(set, {url: source.url}, {fresh: true})
    const bundle = join(dir, 'k8s.tar')
    await kubeferry(['create', '--kubernetes-version', 'v1.31.6', '--image', 'docker.io/library/busybox:1.36', '--mirror', `registry.k8s.io=http://${source.host}`, '--mirror', `docker.io=http://${source.host}`, '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--cache-dir', join(dir, 'cache'), '--no-progress', '-o', bundle])
    await stop(source)
    const images = await bundleIndex(bundle)
    // skopeo reads the same images from the bundle extracted once (its oci: transport).
    const layout = join(dir, 'layout')
    await mkdir(layout)
    await exec('tar', ['-xf', bundle, '-C', layout])

    let bytesUploaded = 0
    const baselineCli = process.env.KUBEFERRY_BENCH_BASELINE
    const samples = {kubeferry: [] as Sample[], rePush: [] as Sample[], skopeo: [] as Sample[], floor: [] as Sample[], baseline: [] as Sample[]}
    const contenders: Partial<Record<'kubeferry' | 'skopeo' | 'floor' | 'baseline', (target: Target, run: number) => Promise<void>>> = {
      // kubeferry push, then a re-push of the now complete registry (whole process, and push's own time).
      kubeferry: async ({reg, host}, run) => {
        const dest = `${host}/kf${run}`
        const before = await cpuMs(reg.process.pid)
        const push = await timed(() => kubeferry(['push', bundle, dest, '--json']))
        const report = JSON.parse(push.value) as PushJson
        samples.kubeferry.push({ms: push.ms, internalMs: report.durationMs, registryCpuMs: (await cpuMs(reg.process.pid)) - before})
        bytesUploaded = report.blobs.bytesUploaded
        const beforeAgain = await cpuMs(reg.process.pid)
        const again = await timed(() => kubeferry(['push', bundle, dest, '--json']))
        const againReport = JSON.parse(again.value) as PushJson
        if (againReport.blobs.uploaded !== 0) throw new Error(`re-push uploaded ${againReport.blobs.uploaded} blob(s)`)
        samples.rePush.push({ms: again.ms, internalMs: againReport.durationMs, registryCpuMs: (await cpuMs(reg.process.pid)) - beforeAgain})
      },
      // skopeo copy --all, one image after the other as a script would.
      skopeo: async ({reg, host}, run) => {
        const before = await cpuMs(reg.process.pid)
        const copy = await timed(async () => {
          for (const image of images) {
            const path = image.name.slice(image.name.indexOf('/') + 1)
            await exec('skopeo', ['copy', '--all', '--quiet', '--dest-tls-verify=false', `oci:${layout}:${image.name}`, `docker://${host}/sk${run}/${path}`], {maxBuffer: 64 << 20})
          }
        })
        samples.skopeo.push({ms: copy.ms, registryCpuMs: (await cpuMs(reg.process.pid)) - before})
      },
      floor: async ({reg, host}, run) => {
        const before = await cpuMs(reg.process.pid)
        const raw = await timed(() => rawUpload(host, layout, `floor${run}`))
        samples.floor.push({ms: raw.ms, registryCpuMs: (await cpuMs(reg.process.pid)) - before})
      },
    }
    if (baselineCli) {
      contenders.baseline = async ({reg, host}, run) => {
        const before = await cpuMs(reg.process.pid)
        const push = await timed(() => kubeferry(['push', bundle, `${host}/base${run}`, '--json'], baselineCli))
        samples.baseline.push({ms: push.ms, internalMs: (JSON.parse(push.value) as PushJson).durationMs, registryCpuMs: (await cpuMs(reg.process.pid)) - before})
      }
    }
    const order = Object.keys(contenders) as Array<keyof typeof contenders>
    for (let run = 0; run < runs; run++) {
      // Rotate who goes first, so a drift in the machine's speed does not favour one contender.
      for (let k = 0; k < order.length; k++) {
        const name = order[(run + k) % order.length]
        const target = await freshTarget(`bench-${name}`)
        try {
          await contenders[name]!(target, run)
        } finally {
          await target.shaper?.close()
          await stop(target.reg)
        }
      }
    }

    const kf = samples.kubeferry.map((s) => s.ms)
    const sk = samples.skopeo.map((s) => s.ms)
    const pairRatios = kf.map((ms, i) => ms / sk[i])
    const result = {
      machine: {cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavgAtStart: loadAtStart, loadavgAtEnd: loadavg().map((l) => Number(l.toFixed(2)))},
      method: `${runs} run(s); each contender on a fresh docker-registry per run, order rotated; medians (min, max)`,
      link: link ? {...link, shaping: 'TCP proxy (bench/shaper.ts), both directions'} : 'loopback, registry on the same CPUs',
      images: images.length,
      layerMiB,
      bytesUploaded,
      kubeferryPushMs: summary(kf),
      kubeferryPushInternalMs: summary(samples.kubeferry.map((s) => s.internalMs ?? 0)),
      skopeoCopyMs: summary(sk),
      rawParallelUploadFloorMs: summary(samples.floor.map((s) => s.ms)),
      ratioKubeferryToSkopeo: Number((median(kf) / median(sk)).toFixed(3)),
      ratioKubeferryToSkopeoPairwiseMedian: Number(median(pairRatios.map((r) => Math.round(r * 1000))) / 1000),
      ratioKubeferryInternalToSkopeo: Number((median(samples.kubeferry.map((s) => s.internalMs ?? 0)) / median(sk)).toFixed(3)),
      registryCpuMs: {
        kubeferry: median(samples.kubeferry.map((s) => s.registryCpuMs)),
        skopeo: median(samples.skopeo.map((s) => s.registryCpuMs)),
        floor: median(samples.floor.map((s) => s.registryCpuMs)),
      },
      ...(baselineCli
        ? {
            baseline: {
              cli: baselineCli,
              pushMs: summary(samples.baseline.map((s) => s.ms)),
              pushInternalMs: summary(samples.baseline.map((s) => s.internalMs ?? 0)),
              ratioToSkopeo: Number((median(samples.baseline.map((s) => s.ms)) / median(sk)).toFixed(3)),
              registryCpuMs: median(samples.baseline.map((s) => s.registryCpuMs)),
            },
          }
        : {}),
      rePushMs: summary(samples.rePush.map((s) => s.ms)),
      rePushInternalMs: summary(samples.rePush.map((s) => s.internalMs ?? 0)),
      targets: {ratio: '≤ 0.5', rePush: '< 1000 ms (internal)'},
    }
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  } finally {
    for (const reg of [...started]) await stopDaemon(reg.process, 2000)
    await rm(dir, {recursive: true, force: true})
  }
}

await main()
