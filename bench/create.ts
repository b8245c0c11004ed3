/**
 * `kubeferry create` vs `skopeo copy` (docker:// → oci-archive, one image after the other as an operator would) vs
 * raw parallel curl of the same blobs (8 at once), in the same run against the same local docker-registry; then the
 * peak RSS of `create` with one ~1 GB layer, and the bundle size vs the sum of its unique blobs.
 *   node dist/bench/create.js [layerMiB=32] [bigLayerMiB=1024]
 * Starts its own docker-registry (stopped by PID) and prints one JSON document with figures and ratios.
 * All three pull one platform (linux/amd64): skopeo copies the host platform by default.
 */
import {execFile, spawn} from 'node:child_process'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {cpus, loadavg, tmpdir, totalmem} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import {buildImageSet} from '../test/images/builder.js'
import {pushImageSet} from '../test/images/push.js'
import {startRegistry} from '../test/harness/peers/registry.js'
import {stopDaemon} from '../test/harness/proc.js'

const exec = promisify(execFile)
const CLI = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'bin', 'run.js')

async function timed<T>(fn: () => Promise<T>): Promise<{ms: number; value: T}> {
  const t0 = performance.now()
  const value = await fn()
  return {ms: Math.round(performance.now() - t0), value}
}

/** Run a command, sampling its peak RSS (VmHWM) from /proc. */
function runWithPeakRss(cmd: string, args: string[]): Promise<{code: number | null; peakRssMiB: number; stdout: string; stderr: string}> {
  return new Promise((res) => {
    const child = spawn(cmd, args, {stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    let peak = 0
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const sample = async (): Promise<void> => {
      try {
        const status = await readFile(`/proc/${child.pid}/status`, 'utf8')
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status)
        if (hwm) peak = Math.max(peak, Number(hwm[1]))
      } catch {
        // exited
      }
    }
    const timer = setInterval(() => void sample(), 50)
    child.on('close', (code) => {
      clearInterval(timer)
      res({code, peakRssMiB: Math.round(peak / 1024), stdout, stderr})
    })
  })
}

async function main(): Promise<void> {
  const layerMiB = Number(process.argv[2] ?? 32)
  const bigLayerMiB = Number(process.argv[3] ?? 1024)
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-bench-create-'))
  const registry = await startRegistry('bench-create', join(dir, 'registry'), {kind: 'none'})
  const host = registry.host
  const mirrors = ['--mirror', `registry.k8s.io=http://${host}`, '--mirror', `docker.io=http://${host}`]
  try {
    const set = await buildImageSet({dir: join(dir, 'images'), layerSize: layerMiB * 1024 * 1024, gzipLevel: 1, busybox: false, platforms: ['linux/amd64', 'linux/arm64/v8']})
    await pushImageSet(set, {url: registry.url}, {fresh: true})
    const names = set.images.map((i) => i.name)

    // 1. kubeferry create, cold cache
    const bundle = join(dir, 'k8s.tar')
    const create = await timed(() => exec(process.execPath, [CLI, 'create', ...names.flatMap((n) => ['--image', n]), ...mirrors, '--platform', 'linux/amd64', '--cache-dir', join(dir, 'cache'), '--no-progress', '--json', '-o', bundle], {maxBuffer: 64 << 20}))
    const summary = JSON.parse(create.value.stdout) as {size: number; blobBytes: number; uniqueBlobs: number}

    // 2. skopeo copy, one image after the other, into oci-archive files
    await mkdir(join(dir, 'skopeo'))
    const skopeo = await timed(async () => {
      for (const [i, image] of set.images.entries()) {
        const path = `${image.repository}:${image.tag}`
        await exec('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${host}/${path}`, `oci-archive:${join(dir, 'skopeo', `${i}.tar`)}:${image.name}`], {maxBuffer: 64 << 20})
      }
    })

    // 3. raw parallel curl of the same blobs (index, amd64 manifest, config, layers), 8 at once
    const urls: string[] = []
    for (const image of set.images) {
      const p = image.platforms.find((x) => x.platform === 'linux/amd64')!
      for (const digest of [p.config, ...p.layers.map((l) => l.digest)]) urls.push(`http://${host}/v2/${image.repository}/blobs/${digest}`)
    }
    const unique = [...new Map(urls.map((u) => [u.split('/blobs/')[1], u])).values()]
    await mkdir(join(dir, 'curl'))
    await writeFile(join(dir, 'urls.txt'), unique.map((u, i) => `url = "${u}"\noutput = "${join(dir, 'curl', String(i))}"\n`).join(''))
    const curl = await timed(() => exec('curl', ['-sS', '--fail', '--parallel', '--parallel-max', '8', '-K', join(dir, 'urls.txt')]))

    // 4. peak RSS with one big layer (a fresh registry repository holding one image)
    let big: {peakRssMiB: number; layerMiB: number; ms: number} | undefined
    if (bigLayerMiB > 0) {
      const bigSet = await buildImageSet({dir: join(dir, 'big'), only: ['registry.k8s.io/pause:3.10'], layerSize: bigLayerMiB * 1024 * 1024, gzipLevel: 1, busybox: false, platforms: ['linux/amd64']})
      for (const image of bigSet.images) image.tag = 'big'
      await pushImageSet(bigSet, {url: registry.url}, {fresh: false})
      const t0 = performance.now()
      const run = await runWithPeakRss(process.execPath, [CLI, 'create', '--image', 'registry.k8s.io/pause:big', ...mirrors, '--cache-dir', join(dir, 'cache-big'), '--no-progress', '-o', join(dir, 'big.tar')])
      if (run.code !== 0) throw new Error(`big create failed: ${run.stderr}`)
      big = {peakRssMiB: run.peakRssMiB, layerMiB: bigLayerMiB, ms: Math.round(performance.now() - t0)}
    }

    const result = {
      machine: {cpus: cpus().length, model: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), loadavg: loadavg().map((l) => Number(l.toFixed(2)))},
      images: set.images.length,
      layerMiB,
      uniqueBlobs: summary.uniqueBlobs,
      blobBytes: summary.blobBytes,
      kubeferryCreateMs: create.ms,
      skopeoCopyMs: skopeo.ms,
      curlParallelMs: curl.ms,
      ratioCreateToSkopeo: Number((create.ms / skopeo.ms).toFixed(3)),
      createThroughputVsCurl: Number((curl.ms / create.ms).toFixed(3)),
      bundleSize: summary.size,
      bundleOverUniqueBlobs: Number((summary.size / summary.blobBytes).toFixed(4)),
      bigLayer: big,
      targets: {ratioCreateToSkopeo: '≤ 0.5', createThroughputVsCurl: '≥ 0.8', peakRssMiB: '< 150', bundleOverUniqueBlobs: '≤ 1.01'},
    }
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  } finally {
    await stopDaemon(registry.process, 2000)
    await rm(dir, {recursive: true, force: true})
  }
}

await main()
