/**
 * `push` writes the publishers' artifacts a bundle carries (issue 19 d3) into a second real registry (distribution
 * 2.8 with htpasswd, no referrers API) with their upstream digests: `skopeo inspect --raw` of every cosign tag and of
 * the referrer hashes to the digest create recorded; the referrer is listed under the referrers tag schema; a rerun
 * pushes nothing; a cosign tag already holding another manifest is kept (left out, reported) unless --overwrite; and
 * `create` from the pushed copy carries the same artifacts again.
 */
import {createHash, randomBytes} from 'node:crypto'
import {execFileSync} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import {loadPeers, missingPeer, peerTest} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {seedSignedImages, type SignedSet} from '../images/signed.js'
import {seedClient} from '../images/seed.js'
import {pushSignature} from '../images/cosign.js'

const prefix = `kf-art-push-${randomBytes(4).toString('hex')}`
let work = ''
let bundle = ''
let sparse = ''
let set: SignedSet | undefined
let setupError: string | undefined

const metadata = (path: string): BundleMetadata => JSON.parse(execFileSync('tar', ['-xOf', path, 'kubeferry/bundle.json'], {encoding: 'utf8'})) as BundleMetadata
const sha = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

test.before(async () => {
  if (missingPeer(['registries', 'skopeo'])) return
  const peers = loadPeers()!
  work = await mkdtemp(join(tmpdir(), 'kubeferry-push-artifacts-'))
  try {
    set = await seedSignedImages(peers, peers.registries.open, prefix, ['registry.k8s.io/pause:3.10'])
    bundle = join(work, 'b.tar')
    sparse = join(work, 'sparse.tar')
    // both platforms: the index is whole, so the registry takes it with its upstream digest
    const r = await runCli(['create', '-o', bundle, '--cache-dir', join(work, 'cache'), '--no-progress', '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--image', set.signed[0].reference])
    if (r.code !== 0) throw new Error(`create failed: ${r.stderr}`)
    const r1 = await runCli(['create', '-o', sparse, '--cache-dir', join(work, 'cache'), '--no-progress', '--platform', 'linux/amd64', '--image', set.signed[0].reference])
    if (r1.code !== 0) throw new Error(`create failed: ${r1.stderr}`)
  } catch (error) {
    setupError = (error as Error).message
  }
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

peerTest.serial('push: every artifact under its cosign tag or digest, upstream digests (skopeo), referrers tag schema; a rerun pushes nothing', ['registries', 'skopeo'], async (t, peers) => {
  if (!set) return t.fail(`setup failed: ${setupError}`)
  const reg = peers.registries.htpasswd
  const dest = `${reg.host}/${prefix}-dest`
  const push = (...extra: string[]) => runCli(['push', bundle, dest, '--no-progress', '--json', '--username', reg.username!, '--password-stdin', ...extra], {stdin: reg.password!})
  const image = metadata(bundle).images[0]
  const dry = await push('--dry-run')
  t.is(dry.code, 0, dry.stderr)
  t.deepEqual((JSON.parse(dry.stdout) as {artifacts: unknown}).artifacts, {pushed: image.artifacts!.length, present: 0, skipped: []}, 'dry run: what would be pushed')
  const first = await push()
  t.is(first.code, 0, first.stderr)
  const report = JSON.parse(first.stdout) as {artifacts: {pushed: number; present: number; skipped: unknown[]}}
  t.deepEqual(report.artifacts, {pushed: image.artifacts!.length, present: 0, skipped: []})
  const repo = `${dest}/${image.repository}`
  const creds = ['--creds', `${reg.username}:${reg.password}`]
  for (const a of image.artifacts!) {
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds, `docker://${repo}${a.tag ? `:${a.tag}` : `@${a.digest}`}`])
    t.is(sha(raw), a.digest, `${a.kind} ${a.tag ?? a.digest}`)
  }
  const referrer = image.artifacts!.find((a) => a.kind === 'referrer')!
  const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds, `docker://${repo}:${referrer.subject.replace(':', '-')}`], {encoding: 'utf8'})) as {manifests: Array<{digest: string; artifactType?: string}>}
  t.deepEqual(index.manifests.map((m) => [m.digest, m.artifactType]), [[referrer.digest, 'application/spdx+json']])
  const again = await push()
  t.is(again.code, 0, again.stderr)
  t.deepEqual((JSON.parse(again.stdout) as typeof report).artifacts, {pushed: 0, present: image.artifacts!.length, skipped: []})

  // create from the pushed copy carries the same artifacts (the round trip a second site would make)
  const copy = join(work, 'copy.tar')
  const r = await runCli(['create', '-o', copy, '--cache-dir', join(work, 'cache'), '--no-progress', '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--image', `${repo}:${image.tag}`, '--username', reg.username!, '--password-stdin'], {stdin: reg.password!})
  t.is(r.code, 0, r.stderr)
  t.deepEqual(metadata(copy).images[0].artifacts!.map((a) => a.digest), image.artifacts!.map((a) => a.digest))
})

peerTest.serial('push keeps a cosign tag that holds other signatures (reported) unless --overwrite', ['registries', 'skopeo'], async (t, peers) => {
  if (!set) return t.fail(`setup failed: ${setupError}`)
  const reg = peers.registries.open
  const dest = `${reg.host}/${prefix}-own`
  const image = metadata(bundle).images[0]
  const sig = image.artifacts!.find((a) => a.kind === 'signature' && a.subject === image.digest)!
  // someone inside signed the image already: another .sig under the same tag
  const client = seedClient(reg)
  const theirs = await pushSignature(client, {registry: reg.host, repository: `${prefix}-own/${image.repository}`}, image.digest, [set.signers.key])
  await client.close()
  const first = await runCli(['push', bundle, dest, '--no-progress', '--json'])
  t.is(first.code, 0, first.stderr)
  const skipped = (JSON.parse(first.stdout) as {artifacts: {skipped: Array<{reference: string; reason: string}>}}).artifacts.skipped
  t.deepEqual(skipped.map((s) => s.reference), [`${dest}/${image.repository}:${sig.tag}`])
  t.regex(skipped[0].reason, /another manifest.*--overwrite/)
  const tagged = (): string => sha(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dest}/${image.repository}:${sig.tag}`]))
  t.is(tagged(), theirs.digest)
  const forced = await runCli(['push', bundle, dest, '--no-progress', '--json', '--overwrite'])
  t.is(forced.code, 0, forced.stderr)
  t.is(tagged(), sig.digest)
})

peerTest.serial('push of a one-platform bundle: the registry refuses the sparse index, so artifacts about the upstream index are left out (reported); the platform\'s signature is pushed', ['registries', 'skopeo'], async (t, peers) => {
  if (!set) return t.fail(`setup failed: ${setupError}`)
  const reg = peers.registries.open
  const dest = `${reg.host}/${prefix}-sparse`
  const image = metadata(sparse).images[0]
  const r = await runCli(['push', sparse, dest, '--no-progress', '--json'])
  t.is(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout) as {images: Array<{targets: Array<{filtered: boolean}>}>; artifacts: {pushed: number; skipped: Array<{reference: string; reason: string}>}}
  t.true(report.images[0].targets[0].filtered)
  const aboutIndex = image.artifacts!.filter((a) => a.subject === image.digest)
  t.is(report.artifacts.skipped.length, aboutIndex.length)
  t.true(report.artifacts.skipped.every((s) => /another digest: it refused the bundle's index, .* build the bundle with --platform all/.test(s.reason)), report.artifacts.skipped.map((s) => s.reason).join('\n'))
  t.is(report.artifacts.pushed, image.artifacts!.length - aboutIndex.length)
  const platformSig = image.artifacts!.find((a) => a.subject !== image.digest)!
  t.is(sha(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dest}/${image.repository}:${platformSig.tag}`])), platformSig.digest)
})
