/**
 * Index-type artifacts (issue 19 d3) through create, verify, inspect, push and serve against the real registries
 * (distribution 2.8): a cosign `.sbom` tag holding a multi-platform SBOM index, and an OCI 1.1 referrer that is an
 * index (fixtures: test/images/index-artifacts.ts). create carries each with its child manifests and their blobs;
 * bundle.json records the tree; verify names a missing child; inspect says what it is; push writes the children then
 * the index (skopeo inspect --raw gives the upstream digest of each), the referrer listed under the tag schema; serve
 * answers the tag, the children and the referrers API.
 */
import {createHash, randomBytes} from 'node:crypto'
import {execFile, execFileSync} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {pushImageSet, seedClient} from '../images/seed.js'
import {INDEX_REFERRER_TYPE, pushIndexArtifacts, type PushedIndexArtifact} from '../images/index-artifacts.js'
import {serveBundles} from '../serve/helpers.js'

const prefix = `kf-idx-art-${randomBytes(4).toString('hex')}`
let work = ''
let bundle = ''
let reference = ''
let pushed: PushedIndexArtifact[] = []
let setupError: string | undefined

const metadata = (path: string): BundleMetadata => JSON.parse(execFileSync('tar', ['-xOf', path, 'kubeferry/bundle.json'], {encoding: 'utf8'})) as BundleMetadata
const sha = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
/** skopeo inspect --raw, not blocking the event loop (an in-process server may have to answer). */
const rawOf = (ref: string, ...extra: string[]): Promise<Buffer> =>
  new Promise((resolve, reject) => execFile('skopeo', ['inspect', '--raw', '--tls-verify=false', ...extra, `docker://${ref}`], {encoding: 'buffer'}, (error, stdout, stderr) => (error ? reject(new Error(`${ref}: ${stderr.toString()}`)) : resolve(stdout))))

test.before(async () => {
  if (missingPeer(['registries', 'skopeo'])) return
  const peers = loadPeers()!
  work = await mkdtemp(join(tmpdir(), 'kubeferry-index-artifacts-'))
  try {
    const image = peers.images.find((i) => i.name === 'registry.k8s.io/pause:3.9')!
    const registry = peers.registries.open
    await pushImageSet({images: [image], blobPath: (digest) => join(peers.imageDir, 'blobs', 'sha256', digest.slice(7))}, registry, {prefix})
    const client = seedClient(registry)
    try {
      pushed = await pushIndexArtifacts(client, {registry: registry.host, repository: `${prefix}/pause`}, image)
    } finally {
      await client.close()
    }
    reference = `${registry.host}/${prefix}/pause:3.9`
    bundle = join(work, 'b.tar')
    const r = await runCli(['create', '-o', bundle, '--cache-dir', join(work, 'cache'), '--no-progress', '--json', '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--image', reference])
    if (r.code !== 0) throw new Error(`create failed: ${r.stderr}`)
    if (/index, not carried/.test(r.stdout + r.stderr)) throw new Error(`create still leaves an index out: ${r.stderr}`)
  } catch (error) {
    setupError = (error as Error).message
  }
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

peerTest('create carries both index artifacts with their child manifests and blobs; bundle.json records the tree; verify passes', ['registries', 'skopeo'], async (t) => {
  if (setupError) return t.fail(setupError)
  const image = metadata(bundle).images[0]
  const artifacts = image.artifacts!
  t.deepEqual(artifacts.map((a) => [a.kind, a.digest, a.mediaType, a.size]), pushed.map((p) => [p.kind, p.digest, 'application/vnd.oci.image.index.v1+json', p.size]))
  t.is(artifacts[1].artifactType, INDEX_REFERRER_TYPE)
  t.is(artifacts[0].tag, pushed[0].tag)
  for (const [a, p] of artifacts.map((a, i) => [a, pushed[i]] as const)) {
    t.is(a.config, undefined)
    t.deepEqual(a.manifests!.map((m) => [m.digest, m.size, m.platform, [m.config!.digest, ...m.layers!.map((l) => l.digest)]]), p.children.map((c) => [c.digest, c.size, c.platform, c.blobs]))
  }
  const entries = new Set(execFileSync('tar', ['-tf', bundle], {encoding: 'utf8'}).trim().split('\n'))
  for (const p of pushed) for (const digest of [p.digest, ...p.children.flatMap((c) => [c.digest, ...c.blobs])]) t.true(entries.has(`blobs/sha256/${digest.slice(7)}`), digest)
  const script = execFileSync('tar', ['-xOf', bundle, 'kubeferry/install.sh'], {encoding: 'utf8'})
  for (const c of pushed.flatMap((p) => p.children)) t.true(script.includes(`blobs/sha256/${c.digest.slice(7)}`), 'install.sh lists the child manifests')
  const v = await runCli(['verify', bundle, '--json'])
  t.is(v.code, 0, v.stdout + v.stderr)
})

peerTest('verify names a child manifest of an index artifact that is missing', ['registries', 'skopeo'], async (t) => {
  if (setupError) return t.fail(setupError)
  const broken = join(work, 'broken.tar')
  execFileSync('cp', [bundle, broken])
  const child = pushed[0].children[1].digest
  execFileSync('tar', ['--delete', '-f', broken, `blobs/sha256/${child.slice(7)}`])
  const r = await runCli(['verify', broken, '--json'])
  t.not(r.code, 0)
  const problems = (JSON.parse(r.stdout) as {problems: Array<{kind: string; message: string}>}).problems
  t.true(problems.some((p) => p.kind === 'MISSING' && p.message.includes('sbom') && p.message.includes(child)), JSON.stringify(problems))
})

peerTest('inspect: each index artifact and the platforms under it', ['registries', 'skopeo'], async (t) => {
  if (setupError) return t.fail(setupError)
  const r = await runCli(['inspect', bundle, '--json'])
  t.is(r.code, 0, r.stderr)
  const carried = (JSON.parse(r.stdout) as {images: Array<{artifacts: Array<{kind: string; manifests?: string[]; artifactType?: string}>}>}).images[0].artifacts
  t.deepEqual(carried.map((a) => [a.kind, a.manifests]), [['sbom', ['linux/amd64', 'linux/arm64/v8']], ['referrer', ['linux/amd64', 'linux/arm64/v8']]])
  const text = await runCli(['inspect', bundle])
  t.regex(text.stdout, /SBOM \(image\) index of linux\/amd64, linux\/arm64\/v8/)
  t.regex(text.stdout, new RegExp(`referrer ${INDEX_REFERRER_TYPE.replace(/[.+]/g, '\\$&')} \\(image\\) index of linux/amd64`))
})

peerTest.serial('push: children then index, every upstream digest (skopeo --raw), the referrer index listed under the tag schema; a rerun pushes nothing', ['registries', 'skopeo'], async (t, peers: Peers) => {
  if (setupError) return t.fail(setupError)
  const reg = peers.registries.htpasswd
  const dest = `${reg.host}/${prefix}-dest`
  const push = () => runCli(['push', bundle, dest, '--no-progress', '--json', '--username', reg.username!, '--password-stdin'], {stdin: reg.password!})
  const first = await push()
  t.is(first.code, 0, first.stderr)
  t.deepEqual((JSON.parse(first.stdout) as {artifacts: unknown}).artifacts, {pushed: 2, present: 0, skipped: []})
  const creds = ['--creds', `${reg.username}:${reg.password}`]
  const repo = `${dest}/${prefix}/pause`
  t.is(sha(await rawOf(`${repo}:${pushed[0].tag}`, ...creds)), pushed[0].digest, '.sbom index under its cosign tag')
  t.is(sha(await rawOf(`${repo}@${pushed[1].digest}`, ...creds)), pushed[1].digest, 'referrer index by digest')
  for (const p of pushed) for (const c of p.children) t.is(sha(await rawOf(`${repo}@${c.digest}`, ...creds)), c.digest, `${p.kind} child ${c.platform}`)
  const listed = JSON.parse((await rawOf(`${repo}:${pushed[1].tag}`, ...creds)).toString('utf8')) as {manifests: Array<{digest: string; mediaType: string; artifactType?: string}>}
  t.deepEqual(listed.manifests.map((m) => [m.digest, m.mediaType, m.artifactType]), [[pushed[1].digest, 'application/vnd.oci.image.index.v1+json', INDEX_REFERRER_TYPE]])
  const again = await push()
  t.is(again.code, 0, again.stderr)
  t.deepEqual((JSON.parse(again.stdout) as {artifacts: unknown}).artifacts, {pushed: 0, present: 2, skipped: []})
})

peerTest('serve: the .sbom index and its children with upstream digests, the referrers API listing the referrer index', ['registries', 'skopeo'], async (t) => {
  if (setupError) return t.fail(setupError)
  const server = await serveBundles([bundle])
  try {
    const repo = `${new URL(server.url).host}/${prefix}/pause`
    t.is(sha(await rawOf(`${repo}:${pushed[0].tag}`)), pushed[0].digest)
    for (const p of pushed) for (const c of p.children) t.is(sha(await rawOf(`${repo}@${c.digest}`)), c.digest)
    const image = metadata(bundle).images[0]
    const res = await fetch(`${server.url}/v2/${prefix}/pause/referrers/${image.digest}`)
    const index = (await res.json()) as {manifests: Array<{digest: string; mediaType: string; artifactType?: string}>}
    t.deepEqual(index.manifests.map((m) => [m.digest, m.mediaType, m.artifactType]), [[pushed[1].digest, 'application/vnd.oci.image.index.v1+json', INDEX_REFERRER_TYPE]])
  } finally {
    await server.close()
  }
})
