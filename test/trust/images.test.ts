/**
 * The publishers' key-based cosign signatures verified offline (issue 19 d4, first half), against the real registry
 * (distribution 2.8): test images copied under this run's prefix, signed by the harness in cosign's format
 * (test/images/cosign.ts) — a good signature (pause:3.10, with a keyless-style one beside it), a tampered payload
 * (pause:3.9), a valid signature for another digest (pause:3.8), keyless only (pause:3.6), none (coredns). The
 * images are bundled as registry.k8s.io/… through a mirror, so the built-in registry.k8s.io entry applies; `verify
 * --images` runs in a network namespace of its own (no route to any registry). load and push --verify-images refuse
 * with containerd's namespace and the registry's catalog unchanged, then take a bundle whose images verify.
 */
import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import type {Digest} from '../../src/oci/digest.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {pushSignature} from '../images/cosign.js'
import {pushImageSet, seedClient} from '../images/seed.js'
import {seedSignedImages, type SignedSet} from '../images/signed.js'
import {genKey} from './keys.js'
import {catalog as catalogOf, ctrImages as ctrImagesOf, offline, type Run} from './image-helpers.js'

const runId = randomBytes(3).toString('hex')
const prefix = `kf-imgsig-${runId}`
const pushPrefix = `kf-imgsig-push-${runId}`
const NAMESPACE = `kf-imgsig-${runId}`
const K8S = ['pause:3.10', 'pause:3.9', 'pause:3.8', 'pause:3.6', 'coredns/coredns:v1.11.3'].map((n) => `registry.k8s.io/${n}`)
const [GOOD, TAMPERED, OTHER_DIGEST, KEYLESS, UNSIGNED] = K8S

let work = ''
let set: SignedSet | undefined
let setupError: string | undefined
let peers: Peers | undefined
let keyPub = '' // the signer's public key (cosign.pub)
let wrongPub = ''
let policy = '' // registry.k8s.io/** → keyPub (a file path)
let inlinePolicy = '' // the same key inline, and a wrong key for everything else
let wrongPolicy = ''
let all = '' // the five images
let good = '' // GOOD only

async function create(output: string, images: string[], ...extra: string[]): Promise<Run> {
  const mirror = `registry.k8s.io=${peers!.registries.open.url}/${prefix}`
  return runCli(['create', '-o', output, '--cache-dir', join(work, 'cache'), '--no-progress', '--platform', 'linux/amd64', '--mirror', mirror, ...images.flatMap((r) => ['--image', r]), ...extra])
}

test.before(async () => {
  if (missingPeer(['registries'])) return
  peers = loadPeers()!
  work = await mkdtemp(join(tmpdir(), 'kf-imgsig-'))
  try {
    const registry = peers.registries.open
    set = await seedSignedImages(peers, registry, prefix, ['registry.k8s.io/pause:3.10', 'registry.k8s.io/coredns/coredns:v1.11.3'], 1)
    const variants = ['registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.8', 'registry.k8s.io/pause:3.6'].map((name) => peers!.images.find((i) => i.name === name)!)
    await pushImageSet({images: variants, blobPath: (digest) => join(peers!.imageDir, 'blobs', 'sha256', digest.slice(7))}, registry, {prefix})
    const client = seedClient(registry)
    try {
      const repo = {registry: registry.host, repository: `${prefix}/pause`}
      const [tampered, otherDigest, keyless] = variants.map((i) => i.digest as Digest)
      await pushSignature(client, repo, tampered, [set.signers.key], {tamper: true})
      await pushSignature(client, repo, otherDigest, [set.signers.key], {payloadSubject: tampered})
      await pushSignature(client, repo, keyless, [set.signers.keyless])
    } finally {
      await client.close()
    }
    keyPub = join(work, 'cosign.pub')
    await writeFile(keyPub, set.signers.key.publicPem)
    wrongPub = (await genKey(work, 'wrong', 'p256')).pub
    policy = join(work, 'policy.json')
    await writeFile(policy, JSON.stringify({images: [{match: 'registry.k8s.io/**', keys: ['cosign.pub']}]}))
    inlinePolicy = join(work, 'inline.json')
    await writeFile(inlinePolicy, JSON.stringify({images: [{match: 'registry.k8s.io/pause', keys: [set.signers.key.publicPem]}, {match: '**', keys: [wrongPub]}]}))
    wrongPolicy = join(work, 'wrong.json')
    await writeFile(wrongPolicy, JSON.stringify({images: [{match: 'registry.k8s.io/**', keys: [wrongPub]}]}))
    all = join(work, 'all.tar')
    good = join(work, 'good.tar')
    for (const [output, images] of [[all, K8S], [good, [GOOD]]] as const) {
      const r = await create(output, [...images])
      if (r.code !== 0) throw new Error(`create ${output} failed (${r.code}): ${r.stderr}`)
    }
  } catch (error) {
    setupError = (error as Error).message
  }
})

test.after.always(async () => {
  if (peers?.containerd) await new Promise((done) => execFile('ctr', ['--address', peers!.containerd!.address, 'namespaces', 'rm', NAMESPACE], () => done(undefined)))
  if (work) await rm(work, {recursive: true, force: true})
})

function ready(t: {fail: (m: string) => void}): boolean {
  if (!set || setupError) t.fail(`setup failed: ${setupError ?? 'unknown'}`)
  return Boolean(set) && !setupError
}

interface Verdict {
  name: string
  digest: string
  status: string
  reason?: string
  verifiedBy?: Array<{key: string; keyid: string; subject: string}>
}
const verdicts = (r: Run): Map<string, Verdict> => new Map((JSON.parse(r.stdout) as {imageSignatures: {images: Verdict[]}}).imageSignatures.images.map((v) => [v.name, v]))

peerTest('verify --images with the key: the good image verified, tampered / other digest / keyless-only / unsigned refused, each named with its reason, offline', ['registries'], async (t) => {
  if (!ready(t)) return
  const r = await offline(['verify', all, '--images', '--image-policy', policy, '--json'])
  t.is(r.code, 1, r.stderr)
  const v = verdicts(r)
  const good = v.get(GOOD)!
  t.is(good.status, 'verified', JSON.stringify(good))
  t.deepEqual([...new Set(good.verifiedBy!.map((b) => b.key))], [keyPub])
  const byName = (name: string): Verdict => v.get(name)!
  t.is(byName(TAMPERED).status, 'refused')
  t.regex(byName(TAMPERED).reason!, /does not verify with .*cosign\.pub: the payload was altered after signing \(tampered\)/)
  t.is(byName(OTHER_DIGEST).status, 'refused')
  const tamperedDigest = peers!.images.find((i) => i.name === TAMPERED)!.digest
  t.true(byName(OTHER_DIGEST).reason!.includes(`for another digest: its payload names ${tamperedDigest}, the signature is carried for ${byName(OTHER_DIGEST).digest}`), byName(OTHER_DIGEST).reason)
  t.is(byName(KEYLESS).status, 'refused')
  t.regex(byName(KEYLESS).reason!, /keyless, not checked: no trusted root \(build the bundle with create --trusted-root FILE, or give --trusted-root FILE\)/)
  t.is(byName(UNSIGNED).status, 'refused')
  t.regex(byName(UNSIGNED).reason!, /no signature carried/)
  // the error line names each refused image with its digest, and its signature's digest
  for (const name of [TAMPERED, OTHER_DIGEST, KEYLESS, UNSIGNED]) t.true(r.stderr.includes(`${name}@${byName(name).digest}`), name)
  t.regex(r.stderr, /4 image\(s\) refused by the image signature policy/)
  t.regex(r.stderr, /signature sha256:[0-9a-f]{64} \(layer 1\): does not verify/)
  // the bundle checks themselves passed (no problems): the refusal is the signatures' doing, and `ok` says it as the exit code does
  const json = JSON.parse(r.stdout) as {ok: boolean; problems: unknown[]; error: {code: string}}
  t.false(json.ok)
  t.deepEqual(json.problems, [])
  t.truthy(json.error)
})

peerTest('verify --images: the good bundle passes with the key (policy file or inline PEM), offline, text output names the key', ['registries'], async (t) => {
  if (!ready(t)) return
  const r = await offline(['verify', good, '--images', '--image-policy', policy])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, new RegExp(`${GOOD.replace(/[.]/g, '\\.')}: verified \\(${keyPub.replace(/[.]/g, '\\.')}\\)`))
  t.regex(r.stdout, /images: 1 verified, 0 not checked, 0 refused/)
  const inline = await offline(['verify', good, '--images', '--image-policy', inlinePolicy, '--json'])
  t.is(inline.code, 0, inline.stderr)
  t.regex(verdicts(inline).get(GOOD)!.verifiedBy![0].key, /^--image-policy .*inline\.json entry 1, key 1$/)
  // the signature verified is the one the registry holds for the image's digest (and for its platform)
  const subjects = verdicts(inline).get(GOOD)!.verifiedBy!.map((b) => b.subject)
  t.true(subjects.includes(verdicts(inline).get(GOOD)!.digest))
})

peerTest('verify --images: a wrong key refuses the good image, naming it, its signature and the key', ['registries'], async (t) => {
  if (!ready(t)) return
  const r = await offline(['verify', good, '--images', '--image-policy', wrongPolicy])
  t.is(r.code, 1)
  t.regex(r.stderr, /1 image\(s\) refused/)
  t.true(r.stderr.includes(`${GOOD}@`))
  t.true(r.stderr.includes(`does not verify with ${wrongPub}`), r.stderr)
  t.regex(r.stderr, /signature sha256:[0-9a-f]{64} \(layer 1\)/)
  t.notRegex(r.stdout, /: verified/)
})

peerTest('the built-in registry.k8s.io entry without a trusted root: keyless-only is "not checked" (naming --trusted-root), never verified; --cosign-key does not override it', ['registries'], async (t) => {
  if (!ready(t)) return
  const keylessOnly = join(work, 'keyless.tar')
  const made = await create(keylessOnly, [KEYLESS, GOOD])
  t.is(made.code, 0, made.stderr)
  const r = await offline(['verify', keylessOnly, '--images', '--cosign-key', keyPub, '--json'])
  t.is(r.code, 0, r.stderr)
  const v = verdicts(r)
  for (const name of [KEYLESS, GOOD]) {
    t.is(v.get(name)!.status, 'not-checked', name)
    t.regex(v.get(name)!.reason!, /^keyless, no trusted root: 1 keyless signature\(s\) by krel-trust@k8s-releng-prod\.iam\.gserviceaccount\.com carried, not checked \(give --trusted-root FILE, or build the bundle with create --trusted-root FILE\)$/)
  }
  const text = await offline(['verify', keylessOnly, '--images'])
  t.regex(text.stdout, /registry\.k8s\.io\/pause:3\.6: not checked: keyless, no trusted root/)
  t.regex(text.stdout, /images: 0 verified, 2 not checked, 0 refused/)
  // a policy naming another keyless identity refuses what the built-in entry reports as not checked
  const otherIdentity = join(work, 'other-identity.json')
  await writeFile(otherIdentity, JSON.stringify({images: [{match: 'registry.k8s.io/pause', keyless: [{issuer: 'https://accounts.google.com', subject: 'someone-else@example.com'}]}]}))
  const wrongIdentity = await offline(['verify', keylessOnly, '--images', '--image-policy', otherIdentity, '--json'])
  t.is(wrongIdentity.code, 1)
  t.regex(verdicts(wrongIdentity).get(KEYLESS)!.reason!, /^its keyless signatures name krel-trust@k8s-releng-prod\.iam\.gserviceaccount\.com, not an identity the policy allows \(someone-else@example\.com \(issuer https:\/\/accounts\.google\.com\)\)$/)
  // an image the built-in entry covers with no signature at all is refused (the entry says it is signed)
  const unsigned = await offline(['verify', all, '--images', '--json'])
  t.is(unsigned.code, 1)
  t.regex(verdicts(unsigned).get(UNSIGNED)!.reason!, /^no signature carried \(the policy requires a keyless signature by krel-trust@/)
})

peerTest('images no policy entry names: verified with --cosign-key, "not checked" without; the unsigned one refused under --cosign-key', ['registries'], async (t) => {
  if (!ready(t)) return
  const direct = join(work, 'direct.tar')
  const refs = [set!.signed[0].reference, ...set!.unsigned]
  const made = await runCli(['create', '-o', direct, '--cache-dir', join(work, 'cache'), '--no-progress', '--platform', 'linux/amd64', ...refs.flatMap((r) => ['--image', r])])
  t.is(made.code, 0, made.stderr)
  const none = await offline(['verify', direct, '--images', '--json'])
  t.is(none.code, 0, none.stderr)
  for (const ref of refs) t.is(verdicts(none).get(ref)!.reason, 'no image policy entry and no --cosign-key')
  const keyed = await offline(['verify', direct, '--images', '--cosign-key', keyPub, '--json'])
  t.is(keyed.code, 1)
  t.is(verdicts(keyed).get(refs[0])!.status, 'verified')
  t.is(verdicts(keyed).get(refs[1])!.status, 'refused')
  t.true(keyed.stderr.includes(`${refs[1]}@`))
})

peerTest('create --verify-signatures refuses before the bundle is written, naming the image; passes on the good image', ['registries'], async (t) => {
  if (!ready(t)) return
  const refused = join(work, 'refused.tar')
  const r = await create(refused, [GOOD, TAMPERED], '--verify-signatures', '--image-policy', policy)
  t.is(r.code, 1)
  t.regex(r.stderr, /1 image\(s\) refused by the image signature policy: registry\.k8s\.io\/pause:3\.9@sha256:[0-9a-f]{64}: no valid signature by .*does not verify/)
  t.regex(r.stderr, /no bundle was written/)
  t.false(existsSync(refused))
  t.false(existsSync(`${refused}.sha256`))
  const ok = await create(join(work, 'ok.tar'), [GOOD], '--verify-signatures', '--image-policy', policy, '--json')
  t.is(ok.code, 0, ok.stderr)
  const report = JSON.parse(ok.stdout) as {imageSignatures: {verified: number; refused: number}}
  t.deepEqual([report.imageSignatures.verified, report.imageSignatures.refused], [1, 0])
  const usage = await create(join(work, 'usage.tar'), [GOOD], '--cosign-key', keyPub)
  t.is(usage.code, 2)
  t.regex(usage.stderr, /--cosign-key and --image-policy are for --verify-signatures/)
})

const catalog = (): Promise<string[]> => catalogOf(peers!, pushPrefix)
const ctrImages = (): Promise<string[]> => ctrImagesOf(peers!, NAMESPACE)

peerTest('load and push --verify-images refuse a bundle with a refused image (containerd and the registry unchanged), then take the good one', ['registries', 'containerd'], async (t) => {
  if (!ready(t)) return
  const address = peers!.containerd!.address
  const destination = `${peers!.registries.open.host}/${pushPrefix}`
  const load = (bundle: string, ...extra: string[]): Promise<Run> => runCli(['load', bundle, '--runtime', 'containerd', '--address', address, '--namespace', NAMESPACE, '--platform', 'linux/amd64', '--verify-images', '--image-policy', policy, ...extra])
  const push = (bundle: string): Promise<Run> => runCli(['push', bundle, destination, '--no-progress', '--verify-images', '--image-policy', policy])
  const l = await load(all)
  t.is(l.code, 4, l.stderr)
  t.regex(l.stderr, /4 image\(s\) refused .*nothing was imported/)
  t.deepEqual(await ctrImages(), [])
  const p = await push(all)
  t.is(p.code, 1, p.stderr)
  t.regex(p.stderr, /4 image\(s\) refused .*nothing was pushed/)
  t.deepEqual(await catalog(), [])
  // the same commands take the bundle whose images verify
  const lg = await load(good)
  t.is(lg.code, 0, lg.stderr)
  t.regex(lg.stdout, /registry\.k8s\.io\/pause:3\.10: verified/)
  t.true((await ctrImages()).includes(GOOD))
  const pg = await push(good)
  t.is(pg.code, 0, pg.stderr)
  t.deepEqual(await catalog(), [`${pushPrefix}/pause`])
})

peerTest('bad input: --cosign-key without --images is a usage error; an unreadable key or policy is named', ['registries'], async (t) => {
  if (!ready(t)) return
  const usage = await runCli(['verify', good, '--cosign-key', keyPub])
  t.is(usage.code, 2)
  t.regex(usage.stderr, /--cosign-key and --image-policy are for --images/)
  const missing = await runCli(['verify', good, '--images', '--cosign-key', join(work, 'nope.pub')])
  t.is(missing.code, 1)
  t.regex(missing.stderr, /cannot read key .*nope\.pub/)
  const notJson = join(work, 'bad-policy.json')
  await writeFile(notJson, '{"images": [{"match": "x/**"}]}')
  const bad = await runCli(['verify', good, '--images', '--image-policy', notJson])
  t.is(bad.code, 1)
  t.regex(bad.stderr, /image policy .*bad-policy\.json: entry 1 \(x\/\*\*\) names neither keys nor keyless identities/)
})

peerTest('a swapped image (bundle.json and index.json pointed at another digest, the signatures kept) is refused: the signatures are about the digest they name', ['registries'], async (t) => {
  if (!ready(t)) return
  const [{BundleReader}, {BundleSource}, {verifyImages}, {resolveImagePolicy}] = await Promise.all([import('../../src/bundle/reader.js'), import('../../src/bundle/source.js'), import('../../src/trust/verify-images.js'), import('../../src/trust/image-policy.js')])
  const reader = await BundleReader.open(good)
  const source = new BundleSource(reader)
  const meta = await reader.metadata()
  const from = {manifest: (digest: Digest) => source.manifestBytes(digest), blob: (desc: {digest: Digest; size: number}) => reader.openBlob(desc)}
  const imagePolicy = await resolveImagePolicy({policyFile: policy})
  const other = peers!.images.find((i) => i.name === TAMPERED)!
  // the attacker's bundle.json: the name now means another image (digest and platforms), its artifacts kept
  const swapped = meta.images.map((i) => ({...i, digest: other.digest as Digest, platforms: i.platforms.map((p) => ({...p, digest: other.platforms[0].digest as Digest}))}))
  const named = new Map((await source.images()).map((i) => [i.name, i.desc.digest as string]))
  const honest = await verifyImages(from, meta.images, imagePolicy, named)
  t.is(honest.images[0].status, 'verified', 'the unchanged bundle verifies (the refusals below are the swap\'s doing)')
  // index.json still names the signed digest: bundle.json and index.json disagree
  const halfSwapped = await verifyImages(from, swapped, imagePolicy, named)
  t.is(halfSwapped.images[0].status, 'refused')
  t.regex(halfSwapped.images[0].reason!, /^index\.json points registry\.k8s\.io\/pause:3\.10 at sha256:[0-9a-f]{64}, not at the signed digest/)
  // both rewritten: the carried signatures are valid, but about the digests they were made for
  const both = await verifyImages(from, swapped, imagePolicy, new Map([[GOOD, other.digest]]))
  t.is(both.images[0].status, 'refused')
  t.regex(both.images[0].reason!, /^valid signatures cover only sha256:[0-9a-f]{64}, sha256:[0-9a-f]{64}, not the image's digest or all its platforms/)
  // and the artifacts recorded as about the new digests: each payload names the digest it was signed for
  const relabelled = swapped.map((i) => ({...i, artifacts: i.artifacts!.map((a) => ({...a, subject: a.subject === meta.images[0].digest ? i.digest : i.platforms[0].digest}))}))
  const all3 = await verifyImages(from, relabelled, imagePolicy, new Map([[GOOD, other.digest]]))
  t.is(all3.images[0].status, 'refused')
  t.regex(all3.images[0].reason!, new RegExp(`for another digest: its payload names ${meta.images[0].digest}, the signature is carried for ${other.digest}`))
})
