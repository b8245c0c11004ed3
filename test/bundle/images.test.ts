/** bundle/images.ts: a bundle's images as the walker reads them through BundleSource say what bundle.json says. */
import {join} from 'node:path'
import test from 'ava'
import {walkBundleImages} from '../../src/bundle/images.js'
import {BundleReader} from '../../src/bundle/reader.js'
import {BundleSource} from '../../src/bundle/source.js'
import {isKubeferryError} from '../../src/oci/errors.js'
import {projectRoot} from '../helpers/cli.js'

const FIXTURES = join(projectRoot, 'fixtures', 'bundles')

for (const name of ['demo-upstream.tar', 'good.tar', 'hostile/base.tar']) {
  test(`${name}: the walked images are bundle.json's images`, async (t) => {
    const reader = await BundleReader.open(join(FIXTURES, name))
    const meta = await reader.metadata()
    const walked = await walkBundleImages(new BundleSource(reader), meta)
    t.true(walked.length > 0)
    t.deepEqual(
      walked.map((w) => w.image),
      meta.images,
    )
    // Each tree's root is the descriptor index.json names.
    t.deepEqual(
      walked.map((w) => w.tree.raw.digest),
      meta.images.map((i) => i.digest),
    )
  })
}

test('without bundle.json roles and sources are unknown, the rest is the same', async (t) => {
  const reader = await BundleReader.open(join(FIXTURES, 'demo-upstream.tar'))
  const meta = await reader.metadata()
  const walked = await walkBundleImages(new BundleSource(reader))
  t.deepEqual(
    walked.map((w) => w.image.platforms),
    meta.images.map((i) => i.platforms),
  )
  t.true(walked.every((w) => w.image.role === undefined && w.image.sources === undefined))
})

test('a missing manifest stops the walk with a bundle error naming the image', async (t) => {
  const reader = await BundleReader.open(join(FIXTURES, 'hostile', 'missing-manifest.tar'))
  const error = await t.throwsAsync(walkBundleImages(new BundleSource(reader), await reader.metadata()))
  t.true(isKubeferryError(error) && error.code === 'BUNDLE_INVALID', String(error))
  t.regex(error!.message, /registry\.k8s\.io\/pause:3\.10: manifest sha256:[0-9a-f]{64} is missing/)
})
