/** Platform selection from an index (src/oci/select.ts). */
import test from 'ava'
import {KubeferryError} from '../../src/oci/errors.js'
import {MediaType} from '../../src/oci/media-types.js'
import {selectPlatformManifests, indexPlatforms} from '../../src/oci/select.js'
import type {ImageIndex} from '../../src/oci/types.js'

const index: ImageIndex = {
  schemaVersion: 2,
  mediaType: MediaType.OciIndex,
  manifests: [
    {mediaType: MediaType.OciManifest, digest: `sha256:${'1'.repeat(64)}`, size: 1, platform: {os: 'linux', architecture: 'amd64'}},
    {mediaType: MediaType.OciManifest, digest: `sha256:${'2'.repeat(64)}`, size: 1, platform: {os: 'linux', architecture: 'arm', variant: 'v6'}},
    {mediaType: MediaType.OciManifest, digest: `sha256:${'3'.repeat(64)}`, size: 1, platform: {os: 'linux', architecture: 'arm', variant: 'v7'}},
    {mediaType: MediaType.OciManifest, digest: `sha256:${'4'.repeat(64)}`, size: 1, platform: {os: 'linux', architecture: 'arm64', variant: 'v8'}},
    {mediaType: MediaType.OciManifest, digest: `sha256:${'5'.repeat(64)}`, size: 1, platform: {os: 'unknown', architecture: 'unknown'}},
  ],
}

test('platform selection: arm64 ≡ arm64/v8, variants, order, attestations skipped, missing named', (t) => {
  const pick = (...p: string[]) => selectPlatformManifests(index, p).map((d) => d.digest[7])
  t.deepEqual(pick('linux/arm64'), ['4'])
  t.deepEqual(pick('linux/arm64/v8'), ['4'])
  t.deepEqual(pick('linux/arm/v7', 'linux/amd64'), ['3', '1'])
  t.deepEqual(pick('linux/arm'), ['2'])
  t.deepEqual(pick('linux/amd64', 'linux/x86_64'), ['1'])
  t.deepEqual(pick(), ['1', '2', '3', '4'])
  t.deepEqual(indexPlatforms(index), ['linux/amd64', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm64'])
  const e = t.throws(() => selectPlatformManifests(index, ['linux/s390x'], {image: 'r.io/a:1'}), {instanceOf: KubeferryError})
  t.is(e?.code, 'NOT_FOUND')
  t.regex(e?.message ?? '', /image r\.io\/a:1 has no linux\/s390x manifest \(it offers linux\/amd64, /)
  t.deepEqual(selectPlatformManifests(index, ['linux/s390x', 'linux/amd64'], {allowMissing: true}).length, 1)
})
