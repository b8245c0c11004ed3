/**
 * The artifact fixtures (cosign.ts) as a client reads them from the real registry (distribution 2.8): skopeo finds
 * cosign's tags with the manifests pushed, the signature verifies with the signer's public key over the payload, the
 * payload names the subject, and the referrers tag schema index lists the referrer whose `subject` is the image.
 */
import {execFileSync} from 'node:child_process'
import {createPublicKey, verify, X509Certificate} from 'node:crypto'
import {randomBytes} from 'node:crypto'
import {peerTest} from '../harness/peers.js'
import {COSIGN, cosignTag} from './cosign.js'
import {KEYLESS_IDENTITY, seedSignedImages} from './signed.js'

const raw = (ref: string): Buffer => execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])
const blob = async (url: string, repo: string, digest: string): Promise<Buffer> => Buffer.from(await (await fetch(`${url}/v2/${repo}/blobs/${digest}`)).arrayBuffer())

peerTest('fixtures: cosign .sig/.att/.sbom and an OCI 1.1 referrer in the real registry, as cosign lays them out', ['registries', 'skopeo'], async (t, peers) => {
  const registry = peers.registries.open
  const prefix = `kf-fixture-${randomBytes(4).toString('hex')}`
  const set = await seedSignedImages(peers, registry, prefix, ['registry.k8s.io/pause:3.10'])
  const [{image, artifacts}] = set.signed
  const repo = `${prefix}/${image.repository}`
  const base = `${registry.host}/${repo}`
  t.deepEqual(artifacts.map((a) => a.kind), ['signature', 'attestation', 'sbom', 'referrer', 'signature'])

  const sig = JSON.parse(raw(`${base}:${cosignTag(image.digest, 'sig')}`).toString()) as {layers: Array<{mediaType: string; digest: string; annotations: Record<string, string>}>}
  t.is(sig.layers.length, 2)
  const payload = await blob(registry.url, repo, sig.layers[0].digest)
  t.is((JSON.parse(payload.toString()) as {critical: {image: {'docker-manifest-digest': string}}}).critical.image['docker-manifest-digest'], image.digest)
  t.is(sig.layers[0].mediaType, COSIGN.simpleSigning)
  t.true(verify('sha256', payload, createPublicKey(set.signers.key.publicPem), Buffer.from(sig.layers[0].annotations[COSIGN.signatureAnnotation], 'base64')), 'key-based signature verifies')
  t.false(verify('sha256', Buffer.concat([payload, Buffer.from(' ')]), createPublicKey(set.signers.key.publicPem), Buffer.from(sig.layers[0].annotations[COSIGN.signatureAnnotation], 'base64')), 'a changed payload does not')
  const cert = new X509Certificate(sig.layers[1].annotations[COSIGN.certificateAnnotation])
  t.is(cert.subjectAltName, `email:${KEYLESS_IDENTITY}`)
  t.true(verify('sha256', payload, cert.publicKey, Buffer.from(sig.layers[1].annotations[COSIGN.signatureAnnotation], 'base64')), 'keyless-style signature verifies with its certificate')

  const att = JSON.parse(raw(`${base}:${cosignTag(image.digest, 'att')}`).toString()) as {layers: Array<{mediaType: string; digest: string}>}
  t.is(att.layers[0].mediaType, COSIGN.dsse)
  const envelope = JSON.parse((await blob(registry.url, repo, att.layers[0].digest)).toString()) as {payload: string}
  t.is((JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as {subject: Array<{digest: {sha256: string}}>}).subject[0].digest.sha256, image.digest.slice(7))
  const sbom = JSON.parse(raw(`${base}:${cosignTag(image.digest, 'sbom')}`).toString()) as {layers: Array<{mediaType: string}>}
  t.is(sbom.layers[0].mediaType, COSIGN.spdx)
  t.is(JSON.parse(raw(`${base}:${cosignTag(image.platforms[0].digest, 'sig')}`).toString()).layers.length, 1)

  const referrers = JSON.parse(raw(`${base}:${cosignTag(image.digest, '')}`).toString()) as {manifests: Array<{digest: string; artifactType: string}>}
  const referrer = artifacts.find((a) => a.kind === 'referrer')!
  t.deepEqual(referrers.manifests.map((m) => m.digest), [referrer.digest])
  const manifest = JSON.parse(raw(`${base}@${referrer.digest}`).toString()) as {subject: {digest: string}; artifactType: string}
  t.is(manifest.subject.digest, image.digest)
  t.is(manifest.artifactType, 'application/spdx+json')
  // distribution 2.8 has no referrers API: what create falls back from
  t.is((await fetch(`${registry.url}/v2/${repo}/referrers/${image.digest}`)).status, 404)
})
