/**
 * Bundles for the serve tests, made with the real bundle writer (planBundle + writeBundle) from the test image
 * builder's OCI layout (the harness peers' image dir when present, else a set built once into a temp dir).
 */
import {createReadStream} from 'node:fs'
import {mkdtemp, readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {planBundle, type ImageSource} from '../../src/bundle/plan.js'
import {writeBundle, type WriteBundleResult} from '../../src/bundle/writer.js'
import {sha256Digest, type Digest} from '../../src/oci/digest.js'
import {formatReference, type Reference} from '../../src/registry/reference.js'
import type {Peers, TestImage} from '../harness/peers.js'
import {buildImageSet} from '../images/builder.js'

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

/** An ImageSource over an OCI layout directory (names from its images). */
export function layoutSource(layout: ImageLayout): ImageSource {
  const blob = (digest: string): string => join(layout.dir, 'blobs', 'sha256', digest.slice('sha256:'.length))
  const raw = async (digest: string, mediaType: string) => {
    const bytes = await readFile(blob(digest))
    return {bytes, digest: sha256Digest(bytes), mediaType}
  }
  return {
    async getManifest(ref: Reference) {
      const name = formatReference({...ref, digest: undefined})
      const image = layout.images.find((i) => i.name === name)
      if (!image) throw new Error(`test layout has no ${name}`)
      return raw(image.digest, image.mediaType)
    },
    async getManifestByDigest(_ref: Reference, digest: Digest) {
      const bytes = await readFile(blob(digest))
      const parsed = JSON.parse(bytes.toString('utf8')) as {mediaType?: string}
      return {bytes, digest: sha256Digest(bytes), mediaType: parsed.mediaType ?? 'application/vnd.oci.image.manifest.v1+json'}
    },
    async openBlob(_ref: Reference, desc: {digest: Digest}) {
      return createReadStream(blob(desc.digest))
    },
  }
}

export async function makeBundle(options: {output: string; names?: string[]; platforms?: string[]; layout?: ImageLayout}): Promise<WriteBundleResult> {
  const layout = options.layout ?? (await testImageLayout())
  const names = options.names ?? layout.images.map((i) => i.name)
  const plan = await planBundle(layoutSource(layout), names.map((reference) => ({reference})), {platforms: options.platforms ?? ['linux/amd64', 'linux/arm64']})
  return writeBundle({
    output: options.output,
    plan,
    request: {images: names, platforms: options.platforms ?? ['linux/amd64', 'linux/arm64']},
    fsync: false,
    openBlob: async (b) => createReadStream(join(layout.dir, 'blobs', 'sha256', b.digest.slice('sha256:'.length))),
  })
}
