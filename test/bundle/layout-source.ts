/**
 * An ImageSource over the test image builder's OCI layout (no registry): lets the bundle writer and the fixture
 * generator run without peers. Not a registry client — it only reads files the builder wrote.
 */
import {createReadStream} from 'node:fs'
import {readFile} from 'node:fs/promises'
import type {ImageSource} from '../../src/bundle/plan.js'
import {KubeferryError} from '../../src/oci/errors.js'
import {DigestVerifier, type Digest} from '../../src/oci/digest.js'
import type {RawManifest} from '../../src/oci/types.js'
import {formatReference, type Reference} from '../../src/oci/reference.js'
import type {TestImage} from '../harness/peers.js'

export function layoutSource(images: TestImage[], blobPath: (digest: string) => string, options: {failBlob?: Digest} = {}): ImageSource & {blobGets: string[]} {
  const byName = new Map(images.map((i) => [i.name, i]))
  const blobGets: string[] = []
  const read = async (digest: Digest): Promise<RawManifest> => {
    const bytes = await readFile(blobPath(digest))
    const mediaType = (JSON.parse(bytes.toString('utf8')) as {mediaType?: string}).mediaType
    if (!mediaType) throw new Error(`test layout: ${digest} has no mediaType field`)
    return {bytes, digest, mediaType}
  }
  return {
    blobGets,
    label: 'test layout',
    async manifest(ref: Reference, digest?: Digest) {
      if (digest) return read(digest)
      if (ref.digest) return read(ref.digest)
      const image = byName.get(formatReference(ref))
      if (!image) throw new KubeferryError('NOT_FOUND', `${formatReference(ref)}: not found in the test layout`)
      return read(image.digest as Digest)
    },
    async blob(_ref, desc) {
      blobGets.push(desc.digest)
      if (options.failBlob === desc.digest) {
        const verifier = new DigestVerifier(desc.digest, desc.size)
        setImmediate(() => verifier.destroy(new KubeferryError('NETWORK', `blob ${desc.digest}: connection reset (injected)`)))
        return verifier
      }
      const verifier = new DigestVerifier(desc.digest, desc.size)
      const raw = createReadStream(blobPath(desc.digest))
      raw.on('error', (error) => verifier.destroy(error))
      return raw.pipe(verifier) as DigestVerifier
    },
  }
}
