/**
 * `serve` answers the publishers' artifacts a bundle carries (issue 19 d3): cosign's tags (skopeo reads them with
 * their upstream digests), the OCI 1.1 referrers API (with the artifactType filter), blobs under the image's
 * repository; and `create --mirror` through a served bundle carries the same artifacts again (the referrers found
 * through the API this time, not the tag schema).
 */
import {createHash, randomBytes} from 'node:crypto'
import {execFile, execFileSync} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import {loadPeers, missingPeer, peerTest} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {seedSignedImages} from '../images/signed.js'
import {serveBundles, type TestServer} from './helpers.js'

const prefix = `kf-art-serve-${randomBytes(4).toString('hex')}`
let work = ''
let bundle = ''
let server: TestServer | undefined
let setupError: string | undefined

const metadata = (path: string): BundleMetadata => JSON.parse(execFileSync('tar', ['-xOf', path, 'kubeferry/bundle.json'], {encoding: 'utf8'})) as BundleMetadata
const sha = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

test.before(async () => {
  if (missingPeer(['registries', 'skopeo'])) return
  const peers = loadPeers()!
  work = await mkdtemp(join(tmpdir(), 'kubeferry-serve-artifacts-'))
  try {
    const set = await seedSignedImages(peers, peers.registries.open, prefix, ['registry.k8s.io/pause:3.10'])
    bundle = join(work, 'b.tar')
    const r = await runCli(['create', '-o', bundle, '--cache-dir', join(work, 'cache'), '--no-progress', '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--image', set.signed[0].reference])
    if (r.code !== 0) throw new Error(`create failed: ${r.stderr}`)
    server = await serveBundles([bundle])
  } catch (error) {
    setupError = (error as Error).message
  }
})

test.after.always(async () => {
  await server?.close()
  if (work) await rm(work, {recursive: true, force: true})
})

peerTest('serve: cosign tags with upstream digests (skopeo), the referrers API with its artifactType filter, tags/list', ['registries', 'skopeo'], async (t) => {
  if (!server) return t.fail(`setup failed: ${setupError}`)
  const image = metadata(bundle).images[0]
  const repo = `${new URL(server.url).host}/${image.repository}` // served at its upstream path
  for (const a of image.artifacts!) {
    // not execFileSync: the server runs in this process and must go on answering
    const raw = await new Promise<Buffer>((resolve, reject) => execFile('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${repo}${a.tag ? `:${a.tag}` : `@${a.digest}`}`], {encoding: 'buffer'}, (error, stdout) => (error ? reject(error) : resolve(stdout))))
    t.is(sha(raw), a.digest, `${a.kind}`)
    for (const blob of [a.config!, ...a.layers!]) t.is((await fetch(`${server.url}/v2/${image.repository}/blobs/${blob.digest}`)).status, 200)
  }
  const referrer = image.artifacts!.find((a) => a.kind === 'referrer')!
  const res = await fetch(`${server.url}/v2/${image.repository}/referrers/${image.digest}`)
  t.is(res.status, 200)
  t.is(res.headers.get('content-type'), 'application/vnd.oci.image.index.v1+json')
  const index = (await res.json()) as {manifests: Array<{digest: string; artifactType?: string; size: number}>}
  t.deepEqual(index.manifests, [{mediaType: referrer.mediaType, digest: referrer.digest, size: referrer.size, artifactType: 'application/spdx+json'}])
  const filtered = await fetch(`${server.url}/v2/${image.repository}/referrers/${image.digest}?artifactType=application/vnd.example`)
  t.is(filtered.headers.get('oci-filters-applied'), 'artifactType')
  t.deepEqual(((await filtered.json()) as {manifests: unknown[]}).manifests, [])
  const none = await fetch(`${server.url}/v2/${image.repository}/referrers/${image.platforms[0].digest}`)
  t.deepEqual(((await none.json()) as {manifests: unknown[]}).manifests, [], 'a digest without referrers: an empty list')
  t.is((await fetch(`${server.url}/v2/no/such/referrers/${image.digest}`)).status, 404)
  const tags = ((await (await fetch(`${server.url}/v2/${image.repository}/tags/list`)).json()) as {tags: string[]}).tags
  t.deepEqual(tags, [image.tag!, ...image.artifacts!.filter((a) => a.tag).map((a) => a.tag!)].sort())
})

peerTest('create --mirror through a served bundle carries the same artifacts (referrers through the API)', ['registries'], async (t) => {
  if (!server) return t.fail(`setup failed: ${setupError}`)
  const image = metadata(bundle).images[0]
  const copy = join(work, 'copy.tar')
  const r = await runCli(['create', '-o', copy, '--cache-dir', join(work, 'cache-2'), '--no-progress', '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--image', image.name, '--mirror', `${image.registry}=${server.url}`, '--debug'])
  t.is(r.code, 0, r.stderr)
  t.deepEqual(metadata(copy).images[0].artifacts, image.artifacts)
  t.true(server.logLines.some((line) => line.includes(`/referrers/${image.digest}`) && / 200 /.test(line)), 'asked the referrers API')
  t.false(server.logLines.some((line) => line.includes(`/manifests/${image.digest.replace(':', '-')} `)), 'no tag schema lookup after the API answered')
})
