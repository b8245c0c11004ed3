/**
 * A LAN fixture that stays up, for timing whole commands by hand (A/B of two builds, a CPU profile, a request
 * timeline): the same registry, test images and shaped link as bench/wan.ts, plus the two reference commands. It
 * writes DIR/images.txt, DIR/curl.cfg (every manifest and unique blob, as wan.ts's curl floor) and DIR/env.sh
 * (HOST=127.0.0.1:PORT of the shaped link), prints DIR, and runs until SIGINT/SIGTERM.
 *
 *   node dist/bench/lan-fixture.js DIR [--rtt-ms 5] [--mbit 1000] [--layer-mib 8]
 *   . DIR/env.sh; node bin/run.js create --images-file DIR/images.txt --mirror registry.k8s.io=http://$HOST …
 *   curl -sSfL --parallel --parallel-max 8 -H "Accept: …" -K DIR/curl.cfg
 */
import {mkdir, writeFile} from 'node:fs/promises'
import {join, resolve} from 'node:path'
import {parseArgs} from 'node:util'
import {buildImageSet} from '../test/images/builder.js'
import {KUBEADM_V1_31_6} from '../test/images/catalog.js'
import {pushImageSet} from '../test/images/seed.js'
import {startRegistry} from '../test/harness/peers/registry.js'
import {stopDaemon} from '../test/harness/proc.js'
import {MANIFEST_ACCEPT} from '../src/oci/media-types.js'
import {startShaper} from './shaper.js'

const {values, positionals} = parseArgs({
  allowPositionals: true,
  options: {'rtt-ms': {type: 'string', default: '5'}, mbit: {type: 'string', default: '1000'}, 'layer-mib': {type: 'string', default: '8'}},
})
const dir = resolve(positionals[0] ?? 'lan-fixture')
await mkdir(dir, {recursive: true})
const images = [...KUBEADM_V1_31_6, 'registry.k8s.io/pause:3.8', 'registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.6']
const registry = await startRegistry('lan', join(dir, 'registry'), {kind: 'none'})
const shaper = await startShaper({host: '127.0.0.1', port: Number(registry.host.split(':')[1])}, {rttMs: Number(values['rtt-ms']), downMbit: Number(values.mbit)})
const stop = async (): Promise<void> => {
  await shaper.close()
  await stopDaemon(registry.process)
  process.exit(0)
}
process.on('SIGINT', () => void stop())
process.on('SIGTERM', () => void stop())
const set = await buildImageSet({dir: join(dir, 'images'), only: images, platforms: ['linux/amd64'], busybox: false, layerSize: Math.round(Number(values['layer-mib']) * 1024 * 1024), gzipLevel: 1})
await pushImageSet(set, {url: registry.url}, {fresh: true})
const host = `127.0.0.1:${shaper.port}`
const lines: string[] = []
const seen = new Set<string>()
const out = join(dir, 'out')
for (const image of set.images) {
  lines.push(`url = "http://${host}/v2/${image.repository}/manifests/${image.tag}"`, `output = "${join(out, `m-${image.digest.slice(7, 19)}`)}"`)
  for (const p of image.platforms) {
    lines.push(`url = "http://${host}/v2/${image.repository}/manifests/${p.digest}"`, `output = "${join(out, `m-${p.digest.slice(7, 19)}`)}"`)
    for (const b of [{digest: p.config}, ...p.layers]) {
      if (seen.has(b.digest)) continue
      seen.add(b.digest)
      lines.push(`url = "http://${host}/v2/${image.repository}/blobs/${b.digest}"`, `output = "${join(out, `b-${b.digest.slice(7, 19)}`)}"`)
    }
  }
}
await writeFile(join(dir, 'curl.cfg'), `${lines.join('\n')}\n`)
await writeFile(join(dir, 'images.txt'), `${images.join('\n')}\n`)
await writeFile(join(dir, 'env.sh'), `HOST=${host}\nACCEPT='${MANIFEST_ACCEPT.join(', ')}'\n`)
process.stdout.write(`${dir}\n`)
