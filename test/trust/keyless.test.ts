/**
 * Keyless verification without peers (the real-registry cases are in keyless-images.test.ts): signatures made against
 * @sigstore/mock's Fulcio and Rekor (test/images/keyless.ts) in both of cosign's forms verify against the authority's
 * trusted root and name the identity; a tampered payload, another authority's root and a mangled log promise are
 * refused with their reason; trusted root files that are not one are refused, naming the file.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import type {Digest} from '../../src/oci/digest.js'
import {keylessVerifier} from '../../src/trust/keyless.js'
import {legacyKeylessBundle} from '../../src/trust/keyless-legacy.js'
import {parseTrustedRoot, readTrustedRootFile} from '../../src/trust/trusted-root.js'
import {identityAllowed} from '../../src/trust/image-policy.js'
import {keylessBundle, legacyKeylessLayer, makeKeylessAuthority} from '../images/keyless.js'

const who = {subject: 'krel-trust@k8s-releng-prod.iam.gserviceaccount.com', issuer: 'https://accounts.google.com'}
const digest = `sha256:${'ab'.repeat(32)}` as Digest
const rootOf = (json: object, origin = 'root.json') => parseTrustedRoot(Buffer.from(JSON.stringify(json)), origin)

test('a legacy keyless .sig layer, mapped onto a Sigstore bundle, verifies and names its identity; tampered or another root does not', async (t) => {
  const authority = await makeKeylessAuthority()
  const verifier = keylessVerifier(rootOf(authority.trustedRoot))
  const layer = await legacyKeylessLayer(authority, who, 'registry.k8s.io/pause', digest)
  const bundle = legacyKeylessBundle(layer.annotations!, layer.bytes)
  if (typeof bundle === 'string') return t.fail(bundle)
  t.deepEqual(verifier.verify(bundle, layer.bytes), {identity: who})
  const tampered = await legacyKeylessLayer(authority, who, 'registry.k8s.io/pause', digest, {tamper: true})
  const tb = legacyKeylessBundle(tampered.annotations!, tampered.bytes) as Record<string, unknown>
  t.regex((verifier.verify(tb, tampered.bytes) as {reason: string}).reason, /^the signed content was altered after signing \(tampered\)/)
  const other = keylessVerifier(rootOf((await makeKeylessAuthority()).trustedRoot, 'other.json'))
  t.regex((other.verify(bundle, layer.bytes) as {reason: string}).reason, /^its certificate is not trusted by the trusted root other\.json/)
  const noPromise = legacyKeylessBundle({...layer.annotations!, 'dev.sigstore.cosign/bundle': ''}, layer.bytes)
  t.regex(noPromise as string, /no dev\.sigstore\.cosign\/bundle annotation/)
  const set = JSON.parse(layer.annotations!['dev.sigstore.cosign/bundle']) as {SignedEntryTimestamp: string; Payload: {logIndex: number}}
  const badSet = legacyKeylessBundle({...layer.annotations!, 'dev.sigstore.cosign/bundle': JSON.stringify({...set, Payload: {...set.Payload, logIndex: set.Payload.logIndex + 1}})}, layer.bytes) as Record<string, unknown>
  t.regex((verifier.verify(badSet, layer.bytes) as {reason: string}).reason, /^its transparency log entry is not trusted/)
})

test('a Sigstore bundle (DSSE, cosign v3) verifies and names its identity; a tampered statement does not', async (t) => {
  const authority = await makeKeylessAuthority()
  const verifier = keylessVerifier(rootOf(authority.trustedRoot))
  t.deepEqual(verifier.verify(await keylessBundle(authority, who, 'registry.k8s.io/pause', digest)), {identity: who})
  const tampered = await keylessBundle(authority, who, 'registry.k8s.io/pause', digest, {tamper: true})
  t.regex((verifier.verify(tampered) as {reason: string}).reason, /tampered/)
  t.regex((verifier.verify({mediaType: 'nope'}) as {reason: string}).reason, /^it is not a valid Sigstore bundle/)
})

test('identities: issuer and subject exactly, or the subject by an anchored pattern', (t) => {
  t.true(identityAllowed([who], who))
  t.false(identityAllowed([who], {...who, issuer: 'https://accounts.google.com.evil'}))
  t.false(identityAllowed([who], {...who, subject: `x${who.subject}`}))
  t.true(identityAllowed([{issuer: who.issuer, subjectRegExp: 'krel-.*@k8s-releng-prod\\.iam\\.gserviceaccount\\.com'}], who))
  t.false(identityAllowed([{issuer: who.issuer, subjectRegExp: 'krel'}], who), 'anchored at both ends')
})

test('a trusted root file that is not one is refused, naming the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kf-trusted-root-'))
  try {
    const cases: Array<[string | Buffer, RegExp]> = [
      ['not json', /trusted root .*r\.json is not JSON/],
      ['[]', /is not a JSON object/],
      ['{"mediaType": "application/json", "tlogs": [{}], "certificateAuthorities": [{}]}', /has mediaType "application\/json", not a Sigstore trusted root's/],
      ['{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": [], "certificateAuthorities": [{}]}', /names no tlogs/],
      [Buffer.alloc(1024 * 1024 + 1, 32), /is 1048577 bytes, more than the 1048576/],
    ]
    for (const [text, error] of cases) {
      await writeFile(join(dir, 'r.json'), text)
      const e = await t.throwsAsync(readTrustedRootFile(join(dir, 'r.json')))
      t.regex(e!.message, error, String(text).slice(0, 40))
      t.regex((e as {hint?: string}).hint ?? '', /trusted_root\.json/)
    }
    const missing = await t.throwsAsync(readTrustedRootFile(join(dir, 'none.json')))
    t.regex(missing!.message, /cannot read trusted root .*none\.json: ENOENT/)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})

test('a Sigstore bundle referrer with a message signature over the manifest itself: verified for that manifest, refused for another', async (t) => {
  const {checkBundleReferrer} = await import('../../src/trust/keyless-checks.js')
  const {messageSignatureBundle} = await import('../images/keyless.js')
  const {createHash} = await import('node:crypto')
  const authority = await makeKeylessAuthority()
  const verifier = keylessVerifier(rootOf(authority.trustedRoot))
  const manifest = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}')
  const subject = `sha256:${createHash('sha256').update(manifest).digest('hex')}` as Digest
  const bundle = Buffer.from(JSON.stringify(await messageSignatureBundle(authority, who, manifest)))
  const layer = {mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', digest: `sha256:${createHash('sha256').update(bundle).digest('hex')}` as Digest, size: bundle.length}
  const source = {manifest: async (d: Digest) => (d === subject ? manifest : undefined), blob: async () => {
    throw new Error('not read')
  }}
  const artifact = (about: Digest) => ({kind: 'referrer' as const, subject: about, digest: `sha256:${'cd'.repeat(32)}` as Digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, config: layer, layers: [layer]})
  const ctx = {identities: [who], verifier: async () => verifier}
  const [ok] = await checkBundleReferrer(source, artifact(subject), [layer], async () => bundle, ctx)
  t.is(ok.outcome, 'verified', ok.reason)
  t.deepEqual([ok.identity, ok.issuer], [who.subject, who.issuer])
  const [other] = await checkBundleReferrer(source, artifact(digest), [layer], async () => bundle, ctx)
  t.is(other.outcome, 'refused')
  t.true(other.reason!.includes(`but for another digest: its payload names ${subject}, the signature is carried for ${digest}`), other.reason)
  const [notChecked] = await checkBundleReferrer(source, artifact(subject), [layer], async () => bundle, {identities: [who]})
  t.deepEqual([notChecked.outcome, notChecked.identity], ['keyless', who.subject])
})
