/**
 * `kubeferry create` vs `skopeo copy` (docker:// → oci-archive, one image after the other as an operator would) vs
 * raw parallel curl of the same manifests and blobs (8 at once), in the same run, against the same local
 * docker-registry (its own, stopped by PID). The machine is shared and noisy, so each contender runs `--runs` times,
 * interleaved, and medians are compared. Then the peak RSS (`/usr/bin/time -v`, whole process) of `create` with one
 * big layer of each `--big` size, the start-up cost (`kubeferry --version`), and bundle size / unique blob bytes.
 *
 *   node dist/bench/create.js [--layer-mib 8] [--runs 5] [--big 256,1024] [--big-runs 2] [--all-platforms]
 *                             [--cli bin/run.js] [--compare OTHER/bin/run.js] [--markdown]
 *
 * `--compare` times a second kubeferry (e.g. an older checkout) in the same runs, for before/after figures.
 * `--all-platforms` adds create with linux/amd64+linux/arm64 vs `skopeo copy --all` (both platforms of each image).
 * Every cold run gets a fresh cache and output directory; the registry's files stay in the page cache.
 */
import {execFile, spawn} from 'node:child_process'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {cpus, loadavg, tmpdir, totalmem} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import {buildImageSet} from '../test/images/builder.js'
import {pushImageSet} from '../test/images/seed.js'
import {startRegistry} from '../test/harness/peers/registry.js'
import {stopDaemon} from '../test/harness/proc.js'
import {MANIFEST_ACCEPT} from '../src/oci/media-types.js'
import {benchCli, cliArgv, STARTUP_ARGS} from './cli.js'

const exec = promisify(execFile)
const ROOT = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'))

interface Options {
  layerMiB: number
  runs: number
  big: number[]
  bigRuns: number
  allPlatforms: boolean
  cli: string
  compare?: string
  markdown: boolean
}

function parseArgs(argv: string[]): Options {
  const options: Options = {layerMiB: 8, runs: 5, big: [256, 1024], bigRuns: 2, allPlatforms: false, cli: benchCli(ROOT), markdown: false}
  for (let i = 0; i < argv.length; i++) {
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${argv[i - 1]} needs a value`)
      return v
    }
    switch (argv[i]) {
      case '--layer-mib': options.layerMiB = Number(value()); break
      case '--runs': options.runs = Number(value()); break
      case '--big': options.big = value().split(',').filter(Boolean).map(Number); break
      case '--big-runs': options.bigRuns = Number(value()); break
      case '--all-platforms': options.allPlatforms = true; break
      case '--cli': options.cli = resolve(value()); break
      case '--compare': options.compare = resolve(value()); break
      case '--markdown': options.markdown = true; break
      default: throw new Error(`unknown argument ${argv[i]}`)
    }
  }
  return options
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : Math.round((sorted[mid - 1] + sorted[mid]) / 2)
}

interface Measured {
  ms: number
  peakRssMiB: number
  userS: number
  sysS: number
  stdout: string
}

/** Run a command under `/usr/bin/time -v`: wall time, peak RSS of the whole process, CPU seconds. */
function measure(cmd: string, args: string[]): Promise<Measured> {
  return new Promise((res, rej) => {
    const t0 = performance.now()
    const child = spawn('/usr/bin/time', ['-v', cmd, ...args], {stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', rej)
    child.on('close', (code) => {
      const ms = Math.round(performance.now() - t0)
      if (code !== 0) return rej(new Error(`${cmd} ${args.slice(0, 3).join(' ')}… exited ${code}: ${stderr.slice(-2000)}`))
      const field = (name: string): number => Number(new RegExp(`${name}: ([0-9.]+)`).exec(stderr)?.[1] ?? Number.NaN)
      res({ms, peakRssMiB: Math.round(field('Maximum resident set size \\(kbytes\\)') / 1024), userS: field('User time \\(seconds\\)'), sysS: field('System time \\(seconds\\)'), stdout})
    })
  })
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2))
  const machine = (): {nproc: number; cpu: string; memGiB: number; loadavg: number[]} => ({
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    loadavg: loadavg().map((l) => Number(l.toFixed(2))),
  })
  const before = machine()
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-bench-create-'))
  const registry = await startRegistry('bench-create', join(dir, 'registry'), {kind: 'none'})
  const host = registry.host
  const mirrors = ['--mirror', `registry.k8s.io=http://${host}`, '--mirror', `docker.io=http://${host}`]
  let scratch = 0
  const fresh = async (): Promise<string> => {
    const d = join(dir, 'runs', String(scratch++))
    await mkdir(d, {recursive: true})
    return d
  }
  try {
    const set = await buildImageSet({dir: join(dir, 'images'), layerSize: options.layerMiB * 1024 * 1024, gzipLevel: 1, busybox: false, platforms: ['linux/amd64', 'linux/arm64/v8']})
    await pushImageSet(set, {url: registry.url}, {fresh: true})
    const imageArgs = set.images.flatMap((i) => ['--image', i.name])

    const create = async (cli: string, platforms: string[]): Promise<Measured & {summary: {size: number; blobBytes: number; uniqueBlobs: number; seconds: number; sha256: string}}> => {
      const d = await fresh()
      const m = await measure(...cliArgv(cli, ['create', ...imageArgs, ...mirrors, ...platforms.flatMap((p) => ['--platform', p]), '--cache-dir', join(d, 'cache'), '--no-progress', '--json', '-o', join(d, 'k8s.tar')]))
      const summary = JSON.parse(m.stdout) as {size: number; blobBytes: number; uniqueBlobs: number; seconds: number; sha256: string}
      await rm(d, {recursive: true, force: true})
      return {...m, summary}
    }
    const skopeo = async (all: boolean): Promise<number> => {
      const d = await fresh()
      const t0 = performance.now()
      for (const [i, image] of set.images.entries()) {
        await exec('skopeo', ['copy', '--quiet', ...(all ? ['--all'] : []), '--src-tls-verify=false', `docker://${host}/${image.repository}:${image.tag}`, `oci-archive:${join(d, `${i}.tar`)}:${image.name}`], {maxBuffer: 64 << 20})
      }
      const ms = Math.round(performance.now() - t0)
      await rm(d, {recursive: true, force: true})
      return ms
    }
    // curl: the same requests create makes for one platform (index, platform manifest, config, layers; blobs once).
    const requests: {url: string}[] = []
    const seen = new Set<string>()
    for (const image of set.images) {
      const p = image.platforms.find((x) => x.platform === 'linux/amd64')!
      requests.push({url: `http://${host}/v2/${image.repository}/manifests/${image.tag}`}, {url: `http://${host}/v2/${image.repository}/manifests/${p.digest}`})
      for (const digest of [p.config, ...p.layers.map((l) => l.digest)]) {
        if (seen.has(digest)) continue
        seen.add(digest)
        requests.push({url: `http://${host}/v2/${image.repository}/blobs/${digest}`})
      }
    }
    // One Accept header for every request (blobs ignore it), so no per-URL option scoping is needed.
    const accept = MANIFEST_ACCEPT.join(', ')
    const curl = async (): Promise<number> => {
      const d = await fresh()
      const config = `header = "Accept: ${accept}"\n` + requests.map((r, i) => `url = "${r.url}"\noutput = "${join(d, String(i))}"\n`).join('')
      await writeFile(join(d, 'curl.conf'), config)
      const t0 = performance.now()
      await exec('curl', ['-sS', '--fail', '--parallel', '--parallel-max', '8', '-K', join(d, 'curl.conf')])
      const ms = Math.round(performance.now() - t0)
      await rm(d, {recursive: true, force: true})
      return ms
    }
    // The same requests through undici in a bare Node.js process (see undici-fetch.ts): the Node client's floor.
    const undiciFloor = async (): Promise<number> => {
      const d = await fresh()
      await writeFile(join(d, 'list.json'), JSON.stringify(requests.map((r, i) => ({url: r.url, output: join(d, String(i)), accept}))))
      const t0 = performance.now()
      await exec(process.execPath, [join(ROOT, 'dist', 'bench', 'undici-fetch.js'), join(d, 'list.json')])
      const ms = Math.round(performance.now() - t0)
      await rm(d, {recursive: true, force: true})
      return ms
    }
    const version = async (cli: string): Promise<Measured> => measure(...cliArgv(cli, STARTUP_ARGS))

    // Warm-up (page cache, registry): one of each, not counted.
    await create(options.cli, ['linux/amd64'])
    await skopeo(false)
    await curl()
    await undiciFloor()

    type Created = Awaited<ReturnType<typeof create>>
    const samples = {create: [] as Created[], compare: [] as Created[], skopeo: [] as number[], curl: [] as number[], undici: [] as number[], createAll: [] as number[], skopeoAll: [] as number[], version: [] as number[], compareVersion: [] as number[]}
    let summary: Awaited<ReturnType<typeof create>>['summary'] | undefined
    let compareSha: string | undefined
    for (let run = 0; run < options.runs; run++) {
      const c = await create(options.cli, ['linux/amd64'])
      summary = c.summary
      samples.create.push(c)
      if (options.compare) {
        const o = await create(options.compare, ['linux/amd64'])
        compareSha = o.summary.sha256
        samples.compare.push(o)
        samples.compareVersion.push((await version(options.compare)).ms)
      }
      samples.skopeo.push(await skopeo(false))
      samples.curl.push(await curl())
      samples.undici.push(await undiciFloor())
      samples.version.push((await version(options.cli)).ms)
      if (options.allPlatforms) {
        samples.createAll.push((await create(options.cli, ['linux/amd64', 'linux/arm64'])).ms)
        samples.skopeoAll.push(await skopeo(true))
      }
      process.stderr.write(`run ${run + 1}/${options.runs}: create ${c.ms} ms (build ${Math.round(c.summary.seconds * 1000)} ms), skopeo ${samples.skopeo.at(-1)} ms, curl ${samples.curl.at(-1)} ms, undici ${samples.undici.at(-1)} ms\n`)
    }

    // Peak RSS with one big layer (its own repository/tag; a fresh cache each run).
    const big: {layerMiB: number; peakRssMiB: number[]; ms: number[]; buildMs: number[]; comparePeakRssMiB?: number[]; compareMs?: number[]}[] = []
    for (const mib of options.big) {
      const bigSet = await buildImageSet({dir: join(dir, `big-${mib}`), only: ['registry.k8s.io/pause:3.10'], layerSize: mib * 1024 * 1024, gzipLevel: 1, busybox: false, platforms: ['linux/amd64']})
      for (const image of bigSet.images) image.tag = `big-${mib}`
      await pushImageSet(bigSet, {url: registry.url}, {fresh: false})
      const row: (typeof big)[number] = {layerMiB: mib, peakRssMiB: [], ms: [], buildMs: []}
      const runBig = async (cli: string): Promise<Measured & {buildMs: number}> => {
        const d = await fresh()
        const m = await measure(...cliArgv(cli, ['create', '--image', `registry.k8s.io/pause:big-${mib}`, ...mirrors, '--cache-dir', join(d, 'cache'), '--no-progress', '--json', '-o', join(d, 'big.tar')]))
        await rm(d, {recursive: true, force: true})
        return {...m, buildMs: Math.round((JSON.parse(m.stdout) as {seconds: number}).seconds * 1000)}
      }
      for (let run = 0; run < options.bigRuns; run++) {
        const m = await runBig(options.cli)
        row.peakRssMiB.push(m.peakRssMiB)
        row.ms.push(m.ms)
        row.buildMs.push(m.buildMs)
        if (options.compare) {
          const o = await runBig(options.compare)
          ;(row.comparePeakRssMiB ??= []).push(o.peakRssMiB)
          ;(row.compareMs ??= []).push(o.ms)
        }
      }
      big.push(row)
      await rm(join(dir, `big-${mib}`), {recursive: true, force: true})
    }

    const createMs = median(samples.create.map((s) => s.ms))
    const buildMs = median(samples.create.map((s) => Math.round(s.summary.seconds * 1000)))
    const skopeoMs = median(samples.skopeo)
    const curlMs = median(samples.curl)
    const result = {
      machine: {...before, loadavgAfter: loadavg().map((l) => Number(l.toFixed(2)))},
      runs: options.runs,
      images: set.images.length,
      layerMiB: options.layerMiB,
      uniqueBlobs: summary!.uniqueBlobs,
      blobBytes: summary!.blobBytes,
      median: {
        createMs,
        createBuildMs: buildMs,
        createStartupMs: median(samples.version),
        createCpuS: median(samples.create.map((s) => Number((s.userS + s.sysS).toFixed(2)))),
        createPeakRssMiB: median(samples.create.map((s) => s.peakRssMiB)),
        skopeoMs,
        curlMs,
        undiciFloorMs: median(samples.undici),
        ...(options.allPlatforms ? {createAllMs: median(samples.createAll), skopeoAllMs: median(samples.skopeoAll)} : {}),
        ...(options.compare
          ? {compareCreateMs: median(samples.compare.map((s) => s.ms)), compareBuildMs: median(samples.compare.map((s) => Math.round(s.summary.seconds * 1000))), compareCpuS: median(samples.compare.map((s) => Number((s.userS + s.sysS).toFixed(2)))), compareStartupMs: median(samples.compareVersion)}
          : {}),
      },
      samples: {createMs: samples.create.map((s) => s.ms), skopeoMs: samples.skopeo, curlMs: samples.curl},
      ratios: {
        createToSkopeo: Number((createMs / skopeoMs).toFixed(3)),
        createThroughputVsCurl: Number((curlMs / createMs).toFixed(3)),
        /** The transfer alone (create's own `seconds`: plan, download, tar, fsync; not Node/oclif start-up). */
        buildThroughputVsCurl: Number((curlMs / buildMs).toFixed(3)),
        /** A bare Node.js + undici download of the same requests to files, vs curl: what the runtime alone reaches. */
        undiciFloorVsCurl: Number((curlMs / median(samples.undici)).toFixed(3)),
        createVsUndiciFloor: Number((median(samples.undici) / createMs).toFixed(3)),
        ...(options.allPlatforms ? {createAllToSkopeoAll: Number((median(samples.createAll) / median(samples.skopeoAll)).toFixed(3))} : {}),
      },
      bundleSize: summary!.size,
      bundleOverUniqueBlobs: Number((summary!.size / summary!.blobBytes).toFixed(4)),
      ...(options.compare ? {compare: {cli: options.compare, sameBundle: compareSha === summary!.sha256}} : {}),
      bigLayer: big.map((b) => ({
        layerMiB: b.layerMiB,
        peakRssMiB: median(b.peakRssMiB),
        peakRssSamples: b.peakRssMiB,
        ms: median(b.ms),
        buildMs: median(b.buildMs),
        ...(b.comparePeakRssMiB ? {comparePeakRssMiB: median(b.comparePeakRssMiB), compareMs: median(b.compareMs!)} : {}),
      })),
      targets: {createToSkopeo: '≤ 0.5', createThroughputVsCurl: '≥ 0.8', peakRssMiB: '< 150', bundleOverUniqueBlobs: '≤ 1.01'},
    }
    if (!options.markdown) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
    if (options.markdown) {
      const m = result.median
      const lines = [
        `machine: ${result.machine.nproc} CPUs (${result.machine.cpu}), ${result.machine.memGiB} GiB, load ${result.machine.loadavg.join('/')} → ${result.machine.loadavgAfter.join('/')}; ${options.runs} runs, medians`,
        '',
        `| ${result.images} images, ${options.layerMiB} MiB layers (${(result.blobBytes / 1e6).toFixed(0)} MB unique) | ms |`,
        '|---|---|',
        `| kubeferry create (whole process) | ${m.createMs} |`,
        `| … of which build (plan, download, tar, fsync) | ${m.createBuildMs} |`,
        `| kubeferry start-up (\`${STARTUP_ARGS.join(' ')}\`) | ${m.createStartupMs} |`,
        `| skopeo copy, sequential | ${m.skopeoMs} |`,
        `| curl, 8 parallel | ${m.curlMs} |`,
        `| bare Node.js + undici, 8 parallel, to files (bench/undici-fetch.ts) | ${m.undiciFloorMs} |`,
        ...(options.compare
          ? [
              `| the compared build, create (whole process): ${options.compare} | ${m.compareCreateMs} |`,
              `| … of which build | ${m.compareBuildMs} |`,
              `| the compared build, start-up | ${m.compareStartupMs} |`,
            ]
          : []),
        '',
        ...(options.compare
          ? [`this build / compared build: create ${(m.createMs / m.compareCreateMs!).toFixed(2)}, build phase ${(m.createBuildMs / m.compareBuildMs!).toFixed(2)}; same bundle bytes: ${result.compare!.sameBundle}`]
          : []),
        `create/skopeo ${result.ratios.createToSkopeo}, throughput vs curl ${result.ratios.createThroughputVsCurl} (build phase ${result.ratios.buildThroughputVsCurl}), bundle/blobs ${result.bundleOverUniqueBlobs}`,
        `bare Node.js + undici vs curl ${result.ratios.undiciFloorVsCurl}; create vs bare Node.js + undici ${result.ratios.createVsUndiciFloor}`,
        ...result.bigLayer.map((b) => `big layer ${b.layerMiB} MiB: peak RSS ${b.peakRssMiB} MiB (${b.peakRssSamples.join(', ')}), ${b.ms} ms${b.comparePeakRssMiB ? `; compared build ${b.comparePeakRssMiB} MiB, ${b.compareMs} ms` : ''}`),
      ]
      process.stdout.write(`${lines.join('\n')}\n`)
    }
  } finally {
    await stopDaemon(registry.process, 2000)
    await rm(dir, {recursive: true, force: true})
  }
}

await main()
