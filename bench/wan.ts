/**
 * WAN benchmark: the registry behind a shaped link (RTT ~50 ms, limited bandwidth), comparing `kubeferry create`
 * with `skopeo copy` (one image after the other, as an operator runs it) and a raw parallel download of the same
 * manifests and blobs (`curl --parallel`, 8 at once) — the floor any client can reach over that link.
 *
 * The link is the shaping TCP proxy of bench/shaper.ts (this kernel has no sch_netem): RTT/2 each way, one RTT per
 * new connection, and a downlink of --mbit shared by all connections (requests are small: the uplink is not shaped).
 *
 *   node dist/bench/wan.js [--rtt-ms 50] [--mbit 100] [--layer-mib 2] [--runs 3] [--markdown] [--compare OTHER/bin/run.js]
 *     [--direct] [--create-flag=FLAG …]
 *
 * `--compare` times a second kubeferry (e.g. an older checkout) in the same interleaved runs, for before/after figures.
 * `--direct` names the images by the shaped registry itself (`127.0.0.1:PORT/pause:3.10`: an internal registry as the
 * source) instead of reaching it as a `--mirror` of registry.k8s.io (a pull-through mirror): create's artifact lookups
 * then read each repository's tag list, which a mirror's cannot stand in for (registry/artifact-index.ts).
 * `--create-flag=--no-signatures` compares like with like: curl and skopeo do not look up the publishers' signatures,
 * attestations and SBOMs, which create does by default (five questions per image and platform through a mirror).
 */
import {execFile, spawn} from 'node:child_process'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import {parseArgs} from 'node:util'
import {buildImageSet} from '../test/images/builder.js'
import {KUBEADM_V1_31_6} from '../test/images/catalog.js'
import {pushImageSet} from '../test/images/seed.js'
import {startRegistry} from '../test/harness/peers/registry.js'
import {stopDaemon} from '../test/harness/proc.js'
import {MANIFEST_ACCEPT} from '../src/oci/media-types.js'
import {startShaper} from './shaper.js'
import {benchCli, cliArgv, STARTUP_ARGS} from './cli.js'

const exec = promisify(execFile)
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

const {values} = parseArgs({
  options: {
    'rtt-ms': {type: 'string', default: '50'},
    mbit: {type: 'string', default: '100'},
    'layer-mib': {type: 'string', default: '2'},
    runs: {type: 'string', default: '3'},
    markdown: {type: 'boolean', default: false},
    compare: {type: 'string'},
    direct: {type: 'boolean', default: false},
    // Passed to both builds' create (see above).
    'create-flag': {type: 'string', multiple: true, default: []},
  },
})
const RTT = Number(values['rtt-ms'])
const MBIT = Number(values.mbit)
const LAYER = Math.round(Number(values['layer-mib']) * 1024 * 1024)
const RUNS = Number(values.runs)

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return (performance.now() - t0) / 1000
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, {stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, ...env}})
    let err = ''
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()))
    child.on('close', (code) => (code === 0 ? res() : rej(new Error(`${cmd} ${args[0]} exited ${code}: ${err.slice(-500)}`))))
  })
}

async function machine(): Promise<string> {
  const cpu = (await exec('sh', ['-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).catch(() => ({stdout: '?'}))).stdout.trim()
  const nproc = (await exec('nproc')).stdout.trim()
  const mem = (await exec('sh', ['-c', "free -h | awk '/^Mem:/ {print $2}'"])).stdout.trim()
  return `${cpu}, ${nproc} CPUs (nproc), ${mem} RAM (free -h)`
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'kf-bench-wan-'))
  const images = [...KUBEADM_V1_31_6, 'registry.k8s.io/pause:3.8', 'registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.6']
  const registry = await startRegistry('wan', join(work, 'registry'), {kind: 'none'})
  const shaper = await startShaper({host: '127.0.0.1', port: Number(registry.host.split(':')[1])}, {rttMs: RTT, downMbit: MBIT})
  try {
    const set = await buildImageSet({
      dir: join(work, 'images'),
      only: images,
      platforms: ['linux/amd64'],
      busybox: false,
      layerSize: LAYER,
      gzipLevel: 1,
    })
    await pushImageSet(set, {url: registry.url}, {fresh: true})
    const host = `127.0.0.1:${shaper.port}`
    const uniqueBlobs = new Map<string, {repo: string; size: number; manifest: boolean}>()
    for (const image of set.images) {
      for (const p of image.platforms) {
        for (const b of [{digest: p.config, size: p.configSize}, ...p.layers]) uniqueBlobs.set(b.digest, {repo: image.repository, size: b.size, manifest: false})
      }
    }
    const totalBytes = [...uniqueBlobs.values()].reduce((n, b) => n + b.size, 0)
    process.stderr.write(`wan: ${set.images.length} images, ${uniqueBlobs.size} unique blobs, ${(totalBytes / 1e6).toFixed(1)} MB, link RTT ${RTT} ms, ${MBIT} Mbit/s\n`)

    const results: Record<string, number[]> = {kubeferry: [], skopeo: [], curl: []}
    const imagesFile = join(work, 'images.txt')
    const named = values.direct ? set.images.map((image) => `${host}/${image.repository}:${image.tag}`) : images
    await writeFile(imagesFile, `${named.join('\n')}\n`)
    const reach = values.direct ? [] : ['--mirror', `registry.k8s.io=http://${host}`]
    for (let i = 0; i < RUNS; i++) {
      const dir = join(work, `run-${i}`)
      await mkdir(dir, {recursive: true})
      const create = (cli: string, tag: string): Promise<number> =>
        timed(() => run(...cliArgv(cli, ['create', '--images-file', imagesFile, ...reach, '--cache-dir', join(dir, `cache-${tag}`), '--no-progress', ...values['create-flag'], '-o', join(dir, `${tag}.tar`)]), {SOURCE_DATE_EPOCH: '0'}))
      results.kubeferry.push(await create(benchCli(ROOT), 'k'))
      if (values.compare) (results.compare ??= []).push(await create(resolve(values.compare), 'c'))
      results.skopeo.push(
        await timed(async () => {
          for (const image of set.images) {
            await run('skopeo', ['copy', '--src-tls-verify=false', '--override-arch', 'amd64', '--override-os', 'linux', `docker://${host}/${image.repository}:${image.tag}`, `oci-archive:${join(dir, `${image.repository.replaceAll('/', '_')}.tar`)}:${image.name}`])
          }
        }),
      )
      // Raw floor: every manifest (index + platform) and unique blob, 8 parallel transfers, one curl process.
      const lines: string[] = []
      for (const image of set.images) {
        lines.push(`url = "http://${host}/v2/${image.repository}/manifests/${image.tag}"`, `output = "${join(dir, `m-${image.digest.slice(7, 19)}`)}"`)
        for (const p of image.platforms) lines.push(`url = "http://${host}/v2/${image.repository}/manifests/${p.digest}"`, `output = "${join(dir, `m-${p.digest.slice(7, 19)}`)}"`)
      }
      for (const [digest, b] of uniqueBlobs) lines.push(`url = "http://${host}/v2/${b.repo}/blobs/${digest}"`, `output = "${join(dir, `b-${digest.slice(7, 19)}`)}"`)
      await writeFile(join(dir, 'curl.cfg'), `${lines.join('\n')}\n`)
      results.curl.push(await timed(() => run('curl', ['-sSfL', '--parallel', '--parallel-max', '8', '-H', `Accept: ${MANIFEST_ACCEPT.join(', ')}`, '-K', join(dir, 'curl.cfg')])))
      await rm(dir, {recursive: true, force: true})
      process.stderr.write(`wan: run ${i + 1}/${RUNS}: kubeferry ${results.kubeferry[i].toFixed(2)} s${values.compare ? ` (compare ${results.compare[i].toFixed(2)} s)` : ''}, skopeo ${results.skopeo[i].toFixed(2)} s, curl ${results.curl[i].toFixed(2)} s\n`)
    }
    const startup: number[] = []
    for (let i = 0; i < 3; i++) startup.push(await timed(() => run(...cliArgv(benchCli(ROOT), STARTUP_ARGS))))
    const st = median(startup)
    const k = median(results.kubeferry)
    const s = median(results.skopeo)
    const c = median(results.curl)
    const linkFloor = (totalBytes * 8) / (MBIT * 1e6)
    const summary = {
      link: {rttMs: RTT, mbit: MBIT, shaping: 'TCP proxy (no sch_netem in this kernel)'},
      images: set.images.length,
      uniqueBlobs: uniqueBlobs.size,
      megabytes: Number((totalBytes / 1e6).toFixed(1)),
      runs: RUNS,
      seconds: {kubeferryStartup: Number(st.toFixed(2)), kubeferry: Number(k.toFixed(2)), ...(values.compare ? {compare: Number(median(results.compare).toFixed(2))} : {}), skopeo: Number(s.toFixed(2)), curl: Number(c.toFixed(2)), bandwidthFloor: Number(linkFloor.toFixed(2))},
      ratios: {kubeferryToSkopeo: Number((k / s).toFixed(2)), curlToKubeferry: Number((c / k).toFixed(2))},
      machine: await machine(),
    }
    if (values.markdown) {
      process.stdout.write(
        [
          `Link: RTT ${RTT} ms, ${MBIT} Mbit/s shared downlink (shaping TCP proxy; this kernel has no sch_netem). ${summary.images} images (linux/amd64), ${summary.uniqueBlobs} unique blobs, ${summary.megabytes} MB; median of ${RUNS} runs, interleaved.`,
          '',
          '| contender | seconds | ratio |',
          '|---|---|---|',
          `| kubeferry create (${values.direct ? 'the registry named directly' : '--mirror'}, 8 parallel${values['create-flag'].map((f) => `, ${f}`).join('')}) | ${k.toFixed(2)} | 1.00 |`,
          ...(values.compare ? [`| the --compare build, same runs | ${median(results.compare).toFixed(2)} | this / it, pair by pair: ${median(results.kubeferry.map((x, i) => x / results.compare[i])).toFixed(3)} |`] : []),
          `| skopeo copy, image after image | ${s.toFixed(2)} | ${(s / k).toFixed(2)}× kubeferry |`,
          `| raw curl --parallel 8 (floor) | ${c.toFixed(2)} | kubeferry reaches ${((c / k) * 100).toFixed(0)} % of its speed |`,
          `| bandwidth alone (bytes / link rate) | ${linkFloor.toFixed(2)} | |`,
          `| (kubeferry start-up alone: \`kubeferry ${STARTUP_ARGS.join(' ')}\`) | ${st.toFixed(2)} | without it, raw download / kubeferry = ${((c / Math.max(0.01, k - st)) * 100).toFixed(0)} % |`,
          '',
          `kubeferry / skopeo = **${(k / s).toFixed(2)}×** (target ≤ 0.5×); raw download / kubeferry = **${((c / k) * 100).toFixed(0)} %** (target ≥ 80 %).`,
          '',
        ].join('\n'),
      )
    } else {
      process.stdout.write(`${JSON.stringify(summary)}\n`)
    }
  } finally {
    await shaper.close()
    await stopDaemon(registry.process)
    await rm(work, {recursive: true, force: true})
  }
}

await main()
