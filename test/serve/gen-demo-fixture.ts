/**
 * Regenerates fixtures/bundles/demo-upstream.tar: a tiny bundle under kubeadm v1.31.6's names (plus the runtimes'
 * pause images), linux/amd64 + linux/arm64, synthetic few-hundred-byte layers, made by the real bundle writer. The
 * README demo serves it with `kubeferry serve` as a stand-in for registry.k8s.io, so the demo needs nothing but
 * Node.js. Deterministic: the same input gives the same bytes.
 *
 *   node dist/test/serve/gen-demo-fixture.js [--runnable] [OUT.tar]     (or: bash scripts/gen-demo-fixture.sh)
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {installScriptPathFor} from '../../src/bundle/writer.js'
import {BUSYBOX_STATIC, buildImageSet} from '../images/builder.js'
import {KUBEADM_V1_31_6, RUNTIME_PAUSES} from '../images/catalog.js'
import {makeBundle} from './make-bundle.js'

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
export const DEMO_FIXTURE = join(projectRoot, 'fixtures', 'bundles', 'demo-upstream.tar')
export const DEMO_IMAGES = [...KUBEADM_V1_31_6, ...RUNTIME_PAUSES]

/**
 * `runnable`: give the host architecture's pause images a layer with this machine's static busybox (as the test
 * images have), so the demo can start a real pod sandbox. The committed fixture stays synthetic (no binaries in git).
 */
export async function generateDemoFixture(output = DEMO_FIXTURE, options: {runnable?: boolean} = {}): Promise<{path: string; sha256: string; size: number}> {
  const work = await mkdtemp(join(tmpdir(), 'kubeferry-demo-fixture-'))
  try {
    const names = DEMO_IMAGES
    const set = await buildImageSet({
      dir: join(work, 'images'),
      images: names.map((name, i) => ({
        name,
        format: i % 2 === 0 ? 'docker' : 'oci',
        ...(options.runnable && name.startsWith('registry.k8s.io/pause:') ? {runnable: 'pause' as const} : {}),
      })),
      layerSize: 64,
      baseLayerSize: 64,
      busybox: options.runnable ? BUSYBOX_STATIC : false,
    })
    await rm(output, {force: true})
    const result = await makeBundle({output, names, layout: {dir: set.dir, images: set.images}})
    // The install.sh beside a bundle is for real deliveries; the fixture keeps only the tar and its .sha256.
    await rm(installScriptPathFor(output), {force: true})
    return {path: result.path, sha256: result.sha256, size: result.size}
  } finally {
    await rm(work, {recursive: true, force: true})
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const runnable = args.includes('--runnable')
  const out = args.find((a) => !a.startsWith('--'))
  const result = await generateDemoFixture(out ? resolve(out) : undefined, {runnable})
  process.stdout.write(`${result.path}: ${result.size} bytes, sha256 ${result.sha256}\n`)
}
