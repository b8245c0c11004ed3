/**
 * The artifact lookups sent while planning (bundle/artifact-prefetch.ts): carryArtifacts through the prefetching
 * source asks the source exactly the questions it asks without it (no extra round trip), finds the answers already
 * sent, records the same artifacts, and a failed prefetch fails the lookup as before (and is never unhandled).
 */
import test from 'ava'
import {ArtifactPrefetch} from '../../src/bundle/artifact-prefetch.js'
import {carryArtifacts} from '../../src/bundle/artifacts.js'
import type {BundlePlan} from '../../src/bundle/plan.js'
import {KubeferryError} from '../../src/oci/errors.js'
import {sha256Digest, type Digest} from '../../src/oci/digest.js'
import type {ImageSource} from '../../src/oci/source.js'
import type {RawManifest} from '../../src/oci/types.js'
import {MediaType} from '../../src/oci/media-types.js'

const digestOf = (s: string): Digest => sha256Digest(Buffer.from(s))

/** A signature manifest for `subject` (one config, one layer). */
function signature(subject: Digest): RawManifest {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(`config ${subject}`), size: 2},
      layers: [{mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: digestOf(`layer ${subject}`), size: 200}],
    }),
  )
  return {bytes, mediaType: MediaType.OciManifest, digest: sha256Digest(bytes)}
}

function planOf(): BundlePlan {
  const image = (name: string, repository: string) => ({
    name: `registry.k8s.io/${repository}:${name}`,
    registry: 'registry.k8s.io',
    repository,
    tag: name,
    digest: digestOf(`index ${repository}`),
    mediaType: MediaType.OciIndex,
    size: 100,
    sparse: true,
    platforms: [{platform: 'linux/amd64', digest: digestOf(`amd64 ${repository}`), mediaType: MediaType.OciManifest, size: 100, config: {digest: digestOf('c'), size: 1, mediaType: 'x'}, layers: []}],
  })
  return {images: [image('v1', 'pause'), image('v2', 'etcd')], blobs: [], platforms: ['linux/amd64'], dockerPlatform: 'linux/amd64', warnings: []}
}

/** A source that signs the pause index only and counts every question. */
function countingSource(fail?: string): {source: ImageSource; asked: string[]} {
  const asked: string[] = []
  const signed = digestOf('index pause')
  const source: ImageSource = {
    label: 'fake',
    manifest: async () => undefined,
    blob: async () => {
      throw new Error('no blobs here')
    },
    findTagged: async (ref, tag) => {
      asked.push(`tag ${ref.repository} ${tag}`)
      await new Promise((resolve) => setTimeout(resolve, 5))
      if (fail && tag.endsWith(fail)) throw new KubeferryError('NETWORK', `cannot reach the registry (${tag})`)
      return tag === `sha256-${signed.slice(7)}.sig` ? signature(signed) : undefined
    },
    referrers: async (ref, digest) => {
      asked.push(`referrers ${ref.repository} ${digest}`)
      return []
    },
  }
  return {source, asked}
}

test('prefetched lookups: the same questions, once each, and the same artifacts as without', async (t) => {
  const direct = countingSource()
  const plainPlan = planOf()
  await carryArtifacts(direct.source, plainPlan, {concurrency: 8})

  const early = countingSource()
  const prefetch = new ArtifactPrefetch(early.source, 8)
  const plan = planOf()
  for (const image of plan.images) prefetch.prefetch({registry: image.registry, repository: image.repository, tag: image.tag}, [image.digest, ...image.platforms.map((p) => p.digest)])
  await new Promise((resolve) => setTimeout(resolve, 30)) // the answers arrive before carryArtifacts asks
  const before = early.asked.length
  await carryArtifacts(prefetch, plan, {concurrency: 8})

  t.is(before, direct.asked.length, 'every question was sent by the prefetch')
  t.deepEqual([...early.asked].sort(), [...direct.asked].sort(), 'no question more, none less')
  t.deepEqual(plan.images, plainPlan.images)
  t.deepEqual(plan.blobs.map((b) => b.digest), plainPlan.blobs.map((b) => b.digest))
  t.is(plan.images[0].artifacts?.length, 1)
})

test('a question not prefetched goes to the source; a prefetched answer is taken once', async (t) => {
  const early = countingSource()
  const prefetch = new ArtifactPrefetch(early.source, 1)
  const ref = {registry: 'registry.k8s.io', repository: 'pause'}
  const subject = digestOf('index pause')
  prefetch.prefetch(ref, [subject, digestOf('amd64 pause'), subject])
  t.is(early.asked.length, 4, 'at most 4 × concurrency at once')
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.is(early.asked.length, 8, 'a subject given twice is asked once')
  t.truthy(await prefetch.findTagged(ref, `sha256-${subject.slice(7)}.sig`))
  t.is(await prefetch.findTagged(ref, `sha256-${subject.slice(7)}.sig`).then((m) => m?.digest), signature(subject).digest)
  t.is(early.asked.filter((q) => q.endsWith(`${subject.slice(7)}.sig`)).length, 2, 'the second identical question was sent again')
})

test('a prefetch that fails fails the lookup with its error, and is never an unhandled rejection', async (t) => {
  const early = countingSource('.att')
  const prefetch = new ArtifactPrefetch(early.source, 8)
  const plan = planOf()
  for (const image of plan.images) prefetch.prefetch({registry: image.registry, repository: image.repository}, [image.digest, ...image.platforms.map((p) => p.digest)])
  await new Promise((resolve) => setTimeout(resolve, 30))
  const error = await t.throwsAsync(carryArtifacts(prefetch, plan, {concurrency: 8}))
  t.regex(error!.message, /looking up its signatures: cannot reach the registry/)
})

test('a prefetched referrers lookup hands its warnings (a list cut at its bound) to the plan, given before or after carryArtifacts takes it', async (t) => {
  for (const late of [false, true]) {
    const {source} = countingSource()
    let release: () => void = () => undefined
    const gate = new Promise<void>((resolve) => (release = resolve))
    source.referrers = async (ref, digest, warn) => {
      warn?.(`referrers of ${digest} cut at 1000 (${ref.repository})`)
      if (late) await gate // the answer is still in flight when carryArtifacts takes it
      warn?.(`second page of ${digest} cut`)
      return []
    }
    const prefetch = new ArtifactPrefetch(source, 8)
    const plan = planOf()
    for (const image of plan.images) prefetch.prefetch({registry: image.registry, repository: image.repository, tag: image.tag}, [image.digest])
    if (!late) await new Promise((resolve) => setTimeout(resolve, 30))
    const carried = carryArtifacts(prefetch, plan, {concurrency: 8})
    release()
    await carried
    for (const image of plan.images) {
      t.is(plan.warnings.filter((w) => w.includes(`referrers of ${image.digest} cut at 1000 (${image.repository})`)).length, 1, `${image.name} (late: ${late}): ${plan.warnings.join(' | ')}`)
      t.is(plan.warnings.filter((w) => w.includes(`second page of ${image.digest} cut`)).length, 1, `${image.name} (late: ${late})`)
    }
  }
})
