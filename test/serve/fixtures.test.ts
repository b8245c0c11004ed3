/**
 * serve and the committed fixtures: the README demo's stand-in upstream (fixtures/bundles/demo-upstream.tar) is
 * up to date (regenerates byte-identically) and serves kubeadm v1.31.6's names for two platforms; every hostile
 * bundle in fixtures/bundles/ is refused before anything is served — with --no-verify too, except content-only
 * corruption, which is then caught when the blob is first served (see verify.test.ts).
 */
import test from 'ava'
import {createHash} from 'node:crypto'
import {existsSync, readdirSync} from 'node:fs'
import {mkdtemp, readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {BundleReader} from '../../src/bundle/reader.js'
import {assertBundleValid} from '../../src/bundle/verify.js'
import {isKubeferryError} from '../../src/oci/errors.js'
import {loadCatalog} from '../../src/serve/server.js'
import {DEMO_FIXTURE, DEMO_IMAGES, generateDemoFixture} from './gen-demo-fixture.js'
import {get, projectRoot, serveBundles} from './helpers.js'

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

/** What the demo depends on: image names → digests, and the blobs. (install.sh and the tool version may move on.) */
async function content(path: string): Promise<{images: string[]; blobs: string[]}> {
  const reader = await BundleReader.open(path)
  const meta = await reader.metadata()
  return {images: meta.images.map((i) => `${i.name}@${i.digest}`), blobs: reader.index.order.map((e) => e.name).filter((n) => n.startsWith('blobs/'))}
}

test('the demo fixture is up to date: regenerating gives the same images, digests and blobs, deterministically', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-demo-'))
  const a = await generateDemoFixture(join(dir, 'a.tar'))
  const b = await generateDemoFixture(join(dir, 'b.tar'))
  t.is(a.sha256, b.sha256, 'two generations are byte-identical')
  t.deepEqual(await content(a.path), await content(DEMO_FIXTURE), 'fixtures/bundles/demo-upstream.tar is stale: run bash scripts/gen-demo-fixture.sh')
  if (a.sha256 !== sha(await readFile(DEMO_FIXTURE))) t.log('note: same images, but the committed tar differs in metadata (tool version / install.sh); regenerate when convenient')
})

test('the demo fixture verifies and serves every kubeadm v1.31.6 image for amd64 and arm64', async (t) => {
  await assertBundleValid(DEMO_FIXTURE)
  const server = await serveBundles([DEMO_FIXTURE])
  try {
    for (const name of DEMO_IMAGES) {
      const [, path] = /^registry\.k8s\.io\/(.+)$/.exec(name)!
      const [repository, tag] = path.split(':')
      const answer = await get(`${server.url}/v2/${repository}/manifests/${tag}`)
      t.is(answer.status, 200, name)
      const index = JSON.parse(answer.body.toString()) as {manifests: Array<{platform: {architecture: string}}>}
      t.deepEqual(index.manifests.map((m) => m.platform.architecture).sort(), ['amd64', 'arm64'], name)
    }
  } finally {
    await server.close(1000)
  }
})

const hostileDir = join(projectRoot, 'fixtures', 'bundles', 'hostile')
const hostile = existsSync(hostileDir) ? readdirSync(hostileDir).filter((f) => f.endsWith('.tar') && f !== 'base.tar') : []
const CONTENT_ONLY = new Set(['blob-mismatch.tar'])

test('every hostile fixture is refused at start (full verify), and structurally broken ones with --no-verify too', async (t) => {
  if (hostile.length === 0) return t.log('no hostile fixtures present')
  for (const file of hostile) {
    const path = join(hostileDir, file)
    for (const quick of [false, true]) {
      if (quick && CONTENT_ONLY.has(file)) continue
      const error = await t.throwsAsync(loadCatalog([path], {verify: async (p) => assertBundleValid(p, {quick}), contentVerified: !quick}), undefined, `${file} quick=${quick}`)
      t.true(isKubeferryError(error) && error.code === 'BUNDLE_INVALID', `${file}: ${error?.message}`)
    }
  }
  // and the base they were made from is served
  const catalog = await loadCatalog([join(hostileDir, 'base.tar')], {verify: async (p) => assertBundleValid(p)})
  t.true(catalog.images.length > 0)
})
