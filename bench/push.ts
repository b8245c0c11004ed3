/**
 * push vs `skopeo copy` of the same images into the same (fresh) docker-registry, and a re-push of a complete
 * registry. Starts its own two docker-registry processes (source for `create`, destination), stopped by PID.
 *   node dist/bench/push.js [layerMiB=8]
 * Prints one JSON document: times, the ratio kubeferry/skopeo (target ≤ 0.5), and the re-push time (target < 1 s).
 */
import {execFile} from 'node:child_process'
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {cpus, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {buildImageSet} from '../test/images/builder.js'
import {pushImageSet} from '../test/images/push.js'
import {startRegistry} from '../test/harness/peers/registry.js'
import {stopDaemon} from '../test/harness/proc.js'
import {bundleIndex, CLI} from '../test/push/helpers.js'

const exec = promisify(execFile)

async function timed<T>(fn: () => Promise<T>): Promise<{ms: number; value: T}> {
  const t0 = performance.now()
  const value = await fn()
  return {ms: Math.round(performance.now() - t0), value}
}

async function kubeferry(args: string[]): Promise<string> {
  const {stdout} = await exec(process.execPath, [CLI, ...args], {maxBuffer: 64 << 20})
  return stdout
}

async function main(): Promise<void> {
  const layerMiB = Number(process.argv[2] ?? 8)
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-bench-push-'))
  const source = await startRegistry('bench-source', join(dir, 'source'), {kind: 'none'})
  const dest = await startRegistry('bench-dest', join(dir, 'dest'), {kind: 'none'})
  try {
    const set = await buildImageSet({dir: join(dir, 'images'), layerSize: layerMiB * 1024 * 1024, gzipLevel: 1, busybox: false})
    await pushImageSet(set, {url: source.url}, {fresh: true})
    const bundle = join(dir, 'k8s.tar')
    await kubeferry(['create', '--kubernetes-version', 'v1.31.6', '--image', 'docker.io/library/busybox:1.36', '--mirror', `registry.k8s.io=http://${source.host}`, '--mirror', `docker.io=http://${source.host}`, '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--cache-dir', join(dir, 'cache'), '--no-progress', '-o', bundle])
    const images = await bundleIndex(bundle)

    // kubeferry push into fresh repositories.
    const push = await timed(() => kubeferry(['push', bundle, `${dest.host}/kubeferry`, '--json']))
    const report = JSON.parse(push.value) as {blobs: {uploaded: number; bytesUploaded: number}; durationMs: number}
    // Re-push of the now complete registry: whole command, and push's own time (without node start-up).
    const again = await timed(() => kubeferry(['push', bundle, `${dest.host}/kubeferry`, '--json']))
    const againReport = JSON.parse(again.value) as {blobs: {uploaded: number}; durationMs: number}

    // skopeo copy --all of the same images from the same bundle (extracted once: skopeo's oci: transport) into
    // fresh repositories of the same registry, one image after the other as a script would.
    const layout = join(dir, 'layout')
    await mkdir(layout)
    await exec('tar', ['-xf', bundle, '-C', layout])
    const skopeo = await timed(async () => {
      for (const image of images) {
        const path = image.name.slice(image.name.indexOf('/') + 1)
        await exec('skopeo', ['copy', '--all', '--quiet', '--dest-tls-verify=false', `oci:${layout}:${image.name}`, `docker://${dest.host}/skopeo/${path}`], {maxBuffer: 64 << 20})
      }
    })
    const result = {
      machine: {cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg().map((l) => Number(l.toFixed(2)))},
      images: images.length,
      layerMiB,
      bytesUploaded: report.blobs.bytesUploaded,
      kubeferryPushMs: push.ms,
      kubeferryPushInternalMs: report.durationMs,
      skopeoCopyMs: skopeo.ms,
      ratioKubeferryToSkopeo: Number((push.ms / skopeo.ms).toFixed(3)),
      rePushMs: again.ms,
      rePushInternalMs: againReport.durationMs,
      rePushUploadedBlobs: againReport.blobs.uploaded,
      targets: {ratio: '≤ 0.5', rePush: '< 1000 ms (internal)'},
    }
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  } finally {
    await stopDaemon(source.process, 2000)
    await stopDaemon(dest.process, 2000)
    await rm(dir, {recursive: true, force: true})
  }
}

await main()
