/**
 * Bundles for the serve tests, made with the real bundle writer (planBundle + writeBundle) from the test image
 * builder's OCI layout (the harness peers' image dir when present, else a set built once into a temp dir).
 */
import {createReadStream} from 'node:fs'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {planBundle} from '../../src/bundle/plan.js'
import {writeBundle, type WriteBundleResult} from '../../src/bundle/writer.js'
import type {Peers, TestImage} from '../harness/peers.js'
import {buildImageSet} from '../images/builder.js'
import {layoutSource} from '../bundle/layout-source.js'

export interface ImageLayout {
  dir: string
  images: TestImage[]
}

let built: Promise<ImageLayout> | undefined

/** The test images as an OCI layout: the harness's, or one built once per process. */
export async function testImageLayout(peers?: Peers): Promise<ImageLayout> {
  if (peers?.imageDir) return {dir: peers.imageDir, images: peers.images}
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubeferry-serve-images-'))
    const set = await buildImageSet({dir})
    return {dir, images: set.images}
  })()
  return built
}

const layoutBlob = (layout: ImageLayout, digest: string): string => join(layout.dir, 'blobs', 'sha256', digest.slice('sha256:'.length))

export async function makeBundle(options: {output: string; names?: string[]; platforms?: string[]; layout?: ImageLayout}): Promise<WriteBundleResult> {
  const layout = options.layout ?? (await testImageLayout())
  const names = options.names ?? layout.images.map((i) => i.name)
  const plan = await planBundle(layoutSource(layout.images, (d) => layoutBlob(layout, d)), names.map((reference) => ({reference})), {platforms: options.platforms ?? ['linux/amd64', 'linux/arm64']})
  return writeBundle({
    output: options.output,
    plan,
    request: {images: names, platforms: options.platforms ?? ['linux/amd64', 'linux/arm64']},
    fsync: false,
    openBlob: async (b) => createReadStream(layoutBlob(layout, b.digest)),
  })
}
