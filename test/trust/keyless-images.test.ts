/**
 * The publishers' keyless signatures verified offline (issue 19 d4, keyless half), against the real registry
 * (distribution 2.8): test images copied under this run's prefix and signed by the harness against @sigstore/mock's
 * Fulcio and Rekor (test/images/keyless.ts), in both forms registries hold — cosign's legacy `.sig` (pause:3.10) and a
 * Sigstore bundle referrer (pause:3.9) — plus a tampered payload (pause:3.8, legacy), a valid signature for another
 * digest (pause:3.6, bundle) and a wrong identity (coredns, legacy). The images are bundled as registry.k8s.io/…
 * through a mirror, so the built-in registry.k8s.io entry (krel-trust@…, https://accounts.google.com) applies. The
 * trusted root travels in the bundle (create --trusted-root); `verify --images` runs with no route to any registry.
 */
import {createHash, randomBytes} from 'node:crypto'
import {execFile, execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import type {Digest} from '../../src/oci/digest.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {pushImageSet, seedClient} from '../images/seed.js'
import {makeKeylessAuthority, pushBundleReferrer, pushLegacyKeyless} from '../images/keyless.js'
import {catalog, ctrImages, offline, type Run} from './image-helpers.js'

const runId = randomBytes(3).toString('hex')
const prefix = `kf-keyless-${runId}`
const pushPrefix = `kf-keyless-push-${runId}`
const NAMESPACE = `kf-keyless-${runId}`
const K8S = ['pause:3.10', 'pause:3.9', 'pause:3.8', 'pause:3.6', 'coredns/coredns:v1.11.3'].map((n) => `registry.k8s.io/${n}`)
const [LEGACY, BUNDLED, TAMPERED, OTHER_DIGEST, WRONG_ID] = K8S
const KREL = {subject: 'krel-trust@k8s-releng-prod.iam.gserviceaccount.com', issuer: 'https://accounts.google.com'}

let work = ''
let peers: Peers | undefined
let setupError: string | undefined
let root = '' // the authority's trusted_root.json
let otherRoot = '' // another authority's
let all = '' // the five images, the root carried
let good = '' // LEGACY and BUNDLED (both platforms), the root carried
let noRoot = '' // LEGACY and BUNDLED, no root carried

const sha = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
const digestOf = (name: string): string => peers!.images.find((i) => i.name === name)!.digest

function create(output: string, images: string[], ...extra: string[]): Promise<Run> {
  const mirror = `registry.k8s.io=${peers!.registries.open.url}/${prefix}`
  return runCli(['create', '-o', output, '--cache-dir', join(work, 'cache'), '--no-progress', '--mirror', mirror, ...images.flatMap((r) => ['--image', r]), ...extra])
}

test.before(async () => {
  if (missingPeer(['registries'])) return
  peers = loadPeers()!
  work = await mkdtemp(join(tmpdir(), 'kf-keyless-'))
  try {
    const registry = peers.registries.open
    const images = K8S.map((name) => peers!.images.find((i) => i.name === name)!)
    await pushImageSet({images, blobPath: (digest) => join(peers!.imageDir, 'blobs', 'sha256', digest.slice(7))}, registry, {prefix})
    const authority = await makeKeylessAuthority()
    const client = seedClient(registry)
    try {
      const repo = (name: string) => ({registry: registry.host, repository: `${prefix}/${name.slice('registry.k8s.io/'.length).replace(/:.*$/, '')}`})
      const subject = (name: string) => {
        const i = images.find((x) => x.name === name)!
        return {digest: i.digest as Digest, size: i.size, mediaType: i.mediaType}
      }
      await pushLegacyKeyless(client, repo(LEGACY), subject(LEGACY).digest, authority, KREL)
      await pushBundleReferrer(client, repo(BUNDLED), subject(BUNDLED), authority, KREL)
      await pushLegacyKeyless(client, repo(TAMPERED), subject(TAMPERED).digest, authority, KREL, {tamper: true})
      await pushBundleReferrer(client, repo(OTHER_DIGEST), subject(OTHER_DIGEST), authority, KREL, {signedSubject: subject(TAMPERED).digest})
      await pushLegacyKeyless(client, repo(WRONG_ID), subject(WRONG_ID).digest, authority, {subject: 'someone-else@example.com', issuer: KREL.issuer})
    } finally {
      await client.close()
    }
    root = join(work, 'trusted_root.json')
    await writeFile(root, JSON.stringify(authority.trustedRoot))
    otherRoot = join(work, 'other_root.json')
    await writeFile(otherRoot, JSON.stringify((await makeKeylessAuthority()).trustedRoot))
    all = join(work, 'all.tar')
    good = join(work, 'good.tar')
    noRoot = join(work, 'noroot.tar')
    const amd64 = ['--platform', 'linux/amd64']
    const both = [...amd64, '--platform', 'linux/arm64'] // whole indexes: the registry keeps their upstream digests
    for (const [output, list, extra] of [[all, K8S, [...amd64, '--trusted-root', root]], [good, [LEGACY, BUNDLED], [...both, '--trusted-root', root]], [noRoot, [LEGACY, BUNDLED], amd64]] as const) {
      const r = await create(output, [...list], ...extra)
      if (r.code !== 0) throw new Error(`create ${output} failed (${r.code}): ${r.stderr}`)
    }
  } catch (error) {
    setupError = (error as Error).stack ?? String(error)
  }
})

test.after.always(async () => {
  if (peers?.containerd) await new Promise((done) => execFile('ctr', ['--address', peers!.containerd!.address, 'namespaces', 'rm', NAMESPACE], () => done(undefined)))
  if (work) await rm(work, {recursive: true, force: true})
})

function ready(t: {fail: (m: string) => void}): boolean {
  if (setupError || !all) t.fail(`setup failed: ${setupError ?? 'unknown'}`)
  return !setupError && Boolean(all)
}

interface Verdict {
  name: string
  digest: string
  status: string
  reason?: string
  verifiedBy?: Array<{identity?: {subject: string; issuer: string}; subject: string}>
}
const report = (r: Run) => (JSON.parse(r.stdout) as {imageSignatures: {trustedRoot?: string; images: Verdict[]}}).imageSignatures
const verdicts = (r: Run): Map<string, Verdict> => new Map(report(r).images.map((v) => [v.name, v]))
const metadata = (path: string): BundleMetadata => JSON.parse(execFileSync('tar', ['-xOf', path, 'kubeferry/bundle.json'], {encoding: 'utf8'})) as BundleMetadata

peerTest('verify --images, offline: the legacy .sig and the Sigstore bundle referrer verify against the trusted root the bundle carries, naming the identity', ['registries'], async (t) => {
  if (!ready(t)) return
  const r = await offline(['verify', good, '--images', '--json'])
  t.is(r.code, 0, r.stderr)
  t.regex(report(r).trustedRoot!, /^carried in the bundle \(sha256:[0-9a-f]{64}\)$/)
  for (const name of [LEGACY, BUNDLED]) {
    const v = verdicts(r).get(name)!
    t.is(v.status, 'verified', JSON.stringify(v))
    t.deepEqual(v.verifiedBy, [{identity: KREL, subject: v.digest}])
  }
  const text = await offline(['verify', good, '--images'])
  t.is(text.code, 0, text.stderr)
  t.regex(text.stdout, /registry\.k8s\.io\/pause:3\.9: verified \(keyless krel-trust@k8s-releng-prod\.iam\.gserviceaccount\.com \(issuer https:\/\/accounts\.google\.com\)\)/)
  t.regex(text.stdout, /images: 2 verified, 0 not checked, 0 refused/)
})

peerTest('verify --images, offline: a tampered payload, a signature for another digest and a wrong identity are refused, each named with its signature and reason', ['registries'], async (t) => {
  if (!ready(t)) return
  const r = await offline(['verify', all, '--images', '--json'])
  t.is(r.code, 1, r.stderr)
  const v = verdicts(r)
  t.is(v.get(LEGACY)!.status, 'verified')
  t.is(v.get(BUNDLED)!.status, 'verified')
  t.regex(v.get(TAMPERED)!.reason!, /keyless signature by krel-trust@\S+: the signed content was altered after signing \(tampered\)/)
  t.true(v.get(OTHER_DIGEST)!.reason!.includes(`signed keylessly by krel-trust@k8s-releng-prod.iam.gserviceaccount.com (issuer https://accounts.google.com), but for another digest: its payload names ${digestOf(TAMPERED)}, the signature is carried for ${digestOf(OTHER_DIGEST)}`), v.get(OTHER_DIGEST)!.reason)
  t.true(v.get(WRONG_ID)!.reason!.includes('signed keylessly by someone-else@example.com (issuer https://accounts.google.com), not by an identity the policy allows: expected krel-trust@k8s-releng-prod.iam.gserviceaccount.com (issuer https://accounts.google.com)'), v.get(WRONG_ID)!.reason)
  for (const name of [TAMPERED, OTHER_DIGEST, WRONG_ID]) {
    t.is(v.get(name)!.status, 'refused', name)
    t.true(r.stderr.includes(`${name}@${v.get(name)!.digest}`), name)
  }
  t.regex(r.stderr, /3 image\(s\) refused by the image signature policy/)
  t.regex(r.stderr, /signature sha256:[0-9a-f]{64} \(layer 1\): keyless signature by/)
  const json = JSON.parse(r.stdout) as {ok: boolean; problems: unknown[]}
  t.deepEqual(json.problems, [], 'the bundle itself (with its trusted root blob) passes verify')
  t.false(json.ok, 'ok is the whole verdict: images were refused')
})

peerTest('without a trusted root keyless signatures are "not checked" (naming --trusted-root); --trusted-root FILE checks them, and overrides the carried one', ['registries'], async (t) => {
  if (!ready(t)) return
  const none = await offline(['verify', noRoot, '--images', '--json'])
  t.is(none.code, 0, none.stderr)
  t.is(report(none).trustedRoot, undefined)
  for (const name of [LEGACY, BUNDLED]) {
    t.is(verdicts(none).get(name)!.status, 'not-checked')
    t.regex(verdicts(none).get(name)!.reason!, /^keyless, no trusted root: 1 keyless signature\(s\) by krel-trust@\S+ carried, not checked \(give --trusted-root FILE, or build the bundle with create --trusted-root FILE\)$/)
  }
  const given = await offline(['verify', noRoot, '--images', '--trusted-root', root, '--json'])
  t.is(given.code, 0, given.stderr)
  t.is(report(given).trustedRoot, root)
  t.deepEqual([...verdicts(given).values()].map((v) => v.status), ['verified', 'verified'])
  const other = await offline(['verify', good, '--images', '--trusted-root', otherRoot])
  t.is(other.code, 1)
  t.true(other.stderr.includes(`its certificate is not trusted by the trusted root ${otherRoot}`), other.stderr)
  const usage = await runCli(['verify', good, '--trusted-root', root])
  t.is(usage.code, 2)
  t.regex(usage.stderr, /--trusted-root is for --images/)
  const bad = join(work, 'bad-root.json')
  await writeFile(bad, '{"mediaType": "application/json"}')
  const refused = await runCli(['verify', good, '--images', '--trusted-root', bad])
  t.is(refused.code, 1)
  t.regex(refused.stderr, /trusted root .*bad-root\.json has mediaType "application\/json", not a Sigstore trusted root's/)
})

peerTest('the trusted root is a blob bundle.json names, outside index.json and manifest.json; a bundle without it has no trace of it', ['registries'], async (t) => {
  if (!ready(t)) return
  const meta = metadata(good)
  const bytes = execFileSync('cat', [root])
  t.deepEqual(meta.trustedRoot, {digest: sha(bytes), size: bytes.length, mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1'})
  const carried = execFileSync('tar', ['-xOf', good, `blobs/sha256/${sha(bytes).slice(7)}`])
  t.true(carried.equals(bytes))
  for (const file of ['index.json', 'manifest.json']) t.false(execFileSync('tar', ['-xOf', good, file], {encoding: 'utf8'}).includes(sha(bytes).slice(7)), file)
  t.false('trustedRoot' in metadata(noRoot))
  const full = await runCli(['verify', good])
  t.is(full.code, 0, full.stderr)
  const inspected = await runCli(['inspect', good, '--json'])
  t.deepEqual((JSON.parse(inspected.stdout) as {trustedRoot?: unknown}).trustedRoot, meta.trustedRoot)
  t.regex((await runCli(['inspect', good])).stdout, new RegExp(`Sigstore trusted root carried \\(${meta.trustedRoot!.digest}\\)`))
})

peerTest('inspect names the keyless signer of the Sigstore bundle referrer (read from its layer) as of the legacy .sig, --json and text', ['registries'], async (t) => {
  if (!ready(t)) return
  const r = await runCli(['inspect', good, '--json'])
  t.is(r.code, 0, r.stderr)
  type Carried = {kind: string; about: string; artifactType?: string; signedBy?: string[]}
  const artifacts = new Map((JSON.parse(r.stdout) as {images: Array<{name: string; artifacts?: Carried[]}>}).images.map((i) => [i.name, i.artifacts ?? []]))
  t.deepEqual(artifacts.get(BUNDLED)!.map((a) => [a.kind, a.about, a.artifactType, a.signedBy]), [['referrer', 'image', 'application/vnd.dev.sigstore.bundle.v0.3+json', [KREL.subject]]])
  t.deepEqual(artifacts.get(LEGACY)!.map((a) => [a.kind, a.signedBy]), [['signature', [KREL.subject]]])
  const text = await runCli(['inspect', good])
  t.is(text.code, 0, text.stderr)
  t.regex(text.stdout, /\n {4}referrer application\/vnd\.dev\.sigstore\.bundle\.v0\.3\+json \(image\) by krel-trust@k8s-releng-prod\.iam\.gserviceaccount\.com {2}sha256:[0-9a-f]{12}\n/)
})

peerTest('create --verify-signatures --trusted-root refuses a tampered keyless signature before the bundle is written; passes the good ones', ['registries'], async (t) => {
  if (!ready(t)) return
  const refused = join(work, 'refused.tar')
  const r = await create(refused, [LEGACY, TAMPERED], '--platform', 'linux/amd64', '--verify-signatures', '--trusted-root', root)
  t.is(r.code, 1)
  t.regex(r.stderr, /1 image\(s\) refused by the image signature policy: registry\.k8s\.io\/pause:3\.8@sha256:[0-9a-f]{64}: .*tampered/)
  t.false(existsSync(refused))
  const ok = await create(join(work, 'ok.tar'), [LEGACY, BUNDLED], '--platform', 'linux/amd64', '--verify-signatures', '--trusted-root', root, '--json')
  t.is(ok.code, 0, ok.stderr)
  t.deepEqual([report(ok).images[0].status, report(ok).images[1].status], ['verified', 'verified'])
})

peerTest('load and push --verify-images refuse the bundle with refused images (containerd and the registry unchanged); the good one is pushed into a second registry with its signatures at their upstream digests', ['registries', 'containerd', 'skopeo'], async (t) => {
  if (!ready(t)) return
  const address = peers!.containerd!.address
  const load = (bundle: string): Promise<Run> => runCli(['load', bundle, '--runtime', 'containerd', '--address', address, '--namespace', NAMESPACE, '--platform', 'linux/amd64', '--verify-images'])
  const l = await load(all)
  t.is(l.code, 4, l.stderr)
  t.regex(l.stderr, /3 image\(s\) refused .*tampered.*nothing was imported/)
  t.deepEqual(await ctrImages(peers!, NAMESPACE), [])
  const p = await runCli(['push', all, `${peers!.registries.open.host}/${pushPrefix}`, '--no-progress', '--verify-images'])
  t.is(p.code, 1, p.stderr)
  t.regex(p.stderr, /3 image\(s\) refused .*nothing was pushed/)
  t.deepEqual(await catalog(peers!, pushPrefix), [])
  const lg = await load(good)
  t.is(lg.code, 0, lg.stderr)
  t.regex(lg.stdout, /registry\.k8s\.io\/pause:3\.10: verified \(keyless krel-trust@/)

  const reg = peers!.registries.htpasswd
  const dest = `${reg.host}/${pushPrefix}`
  const pg = await runCli(['push', good, dest, '--no-progress', '--verify-images', '--username', reg.username!, '--password-stdin'], {stdin: reg.password!})
  t.is(pg.code, 0, pg.stderr)
  const creds = ['--creds', `${reg.username}:${reg.password}`]
  const signatures = metadata(good).images.flatMap((i) => (i.artifacts ?? []).map((a) => ({...a, repository: i.repository})))
  t.deepEqual(signatures.map((a) => a.kind).sort(), ['referrer', 'signature'])
  for (const a of signatures) {
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds, `docker://${dest}/${a.repository}${a.tag ? `:${a.tag}` : `@${a.digest}`}`])
    t.is(sha(raw), a.digest, `${a.kind} ${a.tag ?? a.digest}`)
  }
  // and the bundle still verifies with no route to either registry
  const again = await offline(['verify', good, '--images'])
  t.is(again.code, 0, again.stderr)
})
