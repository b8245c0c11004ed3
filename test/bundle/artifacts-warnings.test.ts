/**
 * carryArtifacts passes a referrers lookup's warnings (a bound on a paged or endless list cut it short:
 * registry/referrers.ts) to the plan's warnings, which create prints and reports, each naming the image.
 */
import test from 'ava'
import {carryArtifacts} from '../../src/bundle/artifacts.js'
import type {BundleImage} from '../../src/bundle/layout.js'
import type {BundlePlan} from '../../src/bundle/plan.js'
import type {Digest} from '../../src/oci/digest.js'
import type {ImageSource} from '../../src/oci/source.js'

const digest = (c: string) => `sha256:${c.repeat(64)}` as Digest

test('a bound hit while listing referrers is a plan warning naming the image; nothing is carried from an empty answer', async (t) => {
  const image = {name: 'registry.example/app:1', registry: 'registry.example', repository: 'app', tag: '1', digest: digest('a'), mediaType: 'application/vnd.oci.image.index.v1+json', size: 100, sparse: false, platforms: [{digest: digest('b')}]} as unknown as BundleImage
  const plan: BundlePlan = {images: [image], blobs: [], platforms: ['linux/amd64'], dockerPlatform: 'linux/amd64', warnings: []}
  const asked: string[] = []
  const source = {
    label: 'fake',
    manifest: async () => undefined,
    blob: async () => {
      throw new Error('no blob is read')
    },
    findTagged: async () => undefined,
    referrers: async (_ref, subject, warn) => {
      asked.push(subject)
      warn?.(`referrers of app@${subject} from fake: the list goes on past 50 pages; kept the 50 referrers of those`)
      return []
    },
  } satisfies ImageSource
  await carryArtifacts(source, plan, {concurrency: 2})
  t.deepEqual(asked.sort(), [digest('a'), digest('b')])
  t.deepEqual(plan.warnings.sort(), [digest('a'), digest('b')].map((d) => `registry.example/app:1: referrers of app@${d} from fake: the list goes on past 50 pages; kept the 50 referrers of those`))
  t.is(image.artifacts, undefined)
})
