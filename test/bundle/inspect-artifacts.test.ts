/**
 * inspect's signer for a referrer that is a Sigstore bundle (cosign v3): read from the referrer's layer, without a
 * registry or a bundle file — an in-memory source holding the referrer's manifest and blobs. Bundles are real ones,
 * made against @sigstore/mock (test/images/keyless.ts); nothing is verified (no trusted root is given).
 */
import test from 'ava'
import {artifactLine, certificateIdentity, inspectArtifacts, MAX_SIGSTORE_BUNDLE_BYTES, type ArtifactSource} from '../../src/bundle/inspect-artifacts.js'
import type {BundleImage} from '../../src/bundle/layout.js'
import {sha256Digest, type Digest} from '../../src/oci/digest.js'
import {BUNDLE_MEDIA_TYPE, keylessBundle, makeKeylessAuthority} from '../images/keyless.js'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const EMPTY = 'application/vnd.oci.empty.v1+json'
const KREL = {subject: 'krel-trust@k8s-releng-prod.iam.gserviceaccount.com', issuer: 'https://accounts.google.com'}
const IMAGE = sha256Digest('the image manifest')

/** Blobs and manifests by digest; `blobPrefix` reads like BundleSource's (a prefix, unverified). */
class MemorySource implements ArtifactSource {
  readonly blobs = new Map<string, Buffer>()
  put(bytes: Buffer | string): {digest: Digest; size: number} {
    const b = Buffer.from(bytes)
    const digest = sha256Digest(b)
    this.blobs.set(digest, b)
    return {digest, size: b.length}
  }

  async readManifest(desc: {digest: Digest}): Promise<Buffer | undefined> {
    return this.blobs.get(desc.digest)
  }

  blobSize(digest: Digest): number | undefined {
    return this.blobs.get(digest)?.length
  }

  async blobPrefix(digest: Digest, max: number): Promise<Buffer | undefined> {
    return this.blobs.get(digest)?.subarray(0, max)
  }
}

/** An image carrying one referrer per layer list: each an OCI manifest of `artifactType` with those layers. */
function imageWith(source: MemorySource, referrers: Array<{artifactType: string; layers: Array<{mediaType: string; bytes: Buffer | string}>}>): BundleImage {
  const config = {mediaType: EMPTY, ...source.put('{}')}
  const artifacts = referrers.map(({artifactType, layers}) => {
    const manifest = {schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType, config, layers: layers.map((l) => ({mediaType: l.mediaType, ...source.put(l.bytes)})), subject: {mediaType: OCI_MANIFEST, digest: IMAGE, size: 18}}
    return {kind: 'referrer' as const, subject: IMAGE, mediaType: OCI_MANIFEST, artifactType, ...source.put(JSON.stringify(manifest))}
  })
  return {name: 'registry.k8s.io/pause:3.9', registry: 'registry.k8s.io', repository: 'pause', tag: '3.9', digest: IMAGE, mediaType: OCI_MANIFEST, size: 18, sparse: false, platforms: [], artifacts}
}

const bundleLayer = (json: unknown): {mediaType: string; bytes: string} => ({mediaType: BUNDLE_MEDIA_TYPE, bytes: JSON.stringify(json)})

test('a Sigstore bundle referrer names its signer: the certificate\'s identity (leaf or chain), `key` for a key hint; text as for .sig', async (t) => {
  const authority = await makeKeylessAuthority()
  const keyless = await keylessBundle(authority, KREL, 'registry.k8s.io/pause', IMAGE)
  const material = keyless.verificationMaterial as {certificate: {rawBytes: string}}
  const chained = {...keyless, verificationMaterial: {x509CertificateChain: {certificates: [material.certificate]}}}
  const keyed = {...keyless, verificationMaterial: {publicKey: {hint: 'c2lnbmVyLWtleQ=='}}}
  const source = new MemorySource()
  const image = imageWith(source, [
    {artifactType: BUNDLE_MEDIA_TYPE, layers: [bundleLayer(keyless)]},
    {artifactType: 'application/vnd.dev.sigstore.bundle+json;version=0.3', layers: [{...bundleLayer(chained), mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.3'}]},
    {artifactType: BUNDLE_MEDIA_TYPE, layers: [bundleLayer(keyed)]},
  ])
  const inspected = await inspectArtifacts(source, image)
  t.deepEqual(inspected.map((a) => a.signedBy), [[KREL.subject], [KREL.subject], ['key']])
  t.is(artifactLine(inspected[0]), `referrer ${BUNDLE_MEDIA_TYPE} (image) by ${KREL.subject}  ${image.artifacts![0].digest.slice(0, 19)}`)
  t.regex(artifactLine(inspected[2]), /^referrer application\/vnd\.dev\.sigstore\.bundle\.v0\.3\+json \(image\) by key {2}sha256:/)
  // The one function for both forms: PEM text (cosign's annotation) and DER bytes (a bundle's rawBytes).
  const der = Buffer.from(material.certificate.rawBytes, 'base64')
  t.is(certificateIdentity(der), KREL.subject)
  t.is(certificateIdentity(`-----BEGIN CERTIFICATE-----\n${material.certificate.rawBytes}\n-----END CERTIFICATE-----\n`), KREL.subject)
})

test('a Sigstore bundle that cannot be read is said, not thrown: not JSON, oversized, not its digest, no material; other referrers name no signer', async (t) => {
  const source = new MemorySource()
  const image = imageWith(source, [
    {artifactType: BUNDLE_MEDIA_TYPE, layers: [{mediaType: BUNDLE_MEDIA_TYPE, bytes: 'not json {'}]},
    {artifactType: BUNDLE_MEDIA_TYPE, layers: [{mediaType: BUNDLE_MEDIA_TYPE, bytes: `"${'x'.repeat(MAX_SIGSTORE_BUNDLE_BYTES)}"`}]},
    {artifactType: BUNDLE_MEDIA_TYPE, layers: [bundleLayer({mediaType: BUNDLE_MEDIA_TYPE, verificationMaterial: {certificate: {rawBytes: 'bm90IGEgY2VydA=='}}})]},
    {artifactType: BUNDLE_MEDIA_TYPE, layers: [bundleLayer({mediaType: BUNDLE_MEDIA_TYPE})]},
    {artifactType: BUNDLE_MEDIA_TYPE, layers: [bundleLayer({verificationMaterial: {publicKey: {hint: 'k'}}})]},
    {artifactType: 'application/spdx+json', layers: [bundleLayer({verificationMaterial: {publicKey: {hint: 'other'}}})]},
  ])
  // The last Sigstore bundle's blob no longer matches its digest (changed in place: same size, so the walk passes).
  const tampered = JSON.parse(source.blobs.get(image.artifacts![4].digest)!.toString()) as {layers: Array<{digest: Digest}>}
  source.blobs.set(tampered.layers[0].digest, Buffer.from(source.blobs.get(tampered.layers[0].digest)!.toString().replace('"k"', '"z"')))
  const inspected = await inspectArtifacts(source, image)
  t.deepEqual(inspected.map((a) => a.signedBy), [
    ['unreadable Sigstore bundle (not JSON)'],
    [`unreadable Sigstore bundle (${MAX_SIGSTORE_BUNDLE_BYTES + 2} bytes, more than ${MAX_SIGSTORE_BUNDLE_BYTES})`],
    ['unreadable certificate'],
    ['Sigstore bundle without certificate or key'],
    ['unreadable Sigstore bundle (its blob is missing or does not match its digest: run kubeferry verify)'],
    undefined,
  ])
  t.is(artifactLine(inspected[5]), `referrer application/spdx+json (image)  ${image.artifacts![5].digest.slice(0, 19)}`)
})
