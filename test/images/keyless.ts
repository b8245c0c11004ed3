/**
 * Keyless test signatures, made in-process against @sigstore/mock's Fulcio (CA with a CT log) and Rekor (no network):
 * a per-run authority whose trusted root (trusted_root.json, as sigstore publishes it) names the CA, the log and the
 * CT log. Each signature gets a fresh key and a short-lived certificate for an identity (SAN) and OIDC issuer (Fulcio's
 * issuer extensions), and a Rekor entry over it. Pushed in both forms registries hold:
 *  - cosign's legacy `.sig` (simple-signing payload; certificate, chain and Rekor's SET in layer annotations), as
 *    registry.k8s.io images carry today;
 *  - a Sigstore bundle v0.3 as an OCI 1.1 referrer (cosign 2.4+ --new-bundle-format, cosign v3's default): a DSSE
 *    envelope of an in-toto statement (predicate https://sigstore.dev/cosign/sign/v1) about the image's digest, with
 *    its Rekor entry (dsse 0.0.1, promise and inclusion proof), listed under the referrers tag schema.
 * Broken variants for the verification tests: `tamper` (the stored payload is not the one signed), `signedSubject`
 * (a valid signature naming another digest).
 */
import {createHash, generateKeyPairSync, sign, type KeyObject} from 'node:crypto'
import {initializeCA, initializeCTLog, initializeTLog} from '@sigstore/mock'
import type {RegistryClient} from '../../src/registry/client.js'
import type {Digest} from '../../src/oci/digest.js'
import type {Reference} from '../../src/oci/reference.js'
import {COSIGN, cosignConfig, cosignTag, EMPTY, listReferrer, pushManifest, simpleSigningPayload, type Layer, type PushedArtifact} from './cosign.js'

export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json'
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const REKOR_URL = 'https://rekor.kubeferry.test'

type CA = Awaited<ReturnType<typeof initializeCA>>
type TLog = Awaited<ReturnType<typeof initializeTLog>>

export interface KeylessAuthority {
  /** trusted_root.json naming this authority's CA, Rekor log and CT log. */
  trustedRoot: Record<string, unknown>
  ca: CA
  tlog: TLog
}

/** @sigstore/mock's byte views as a Buffer. */
const buf = (v: ArrayBufferView): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength)
const b64 = (bytes: ArrayBufferView): string => buf(bytes).toString('base64')
const sha256 = (bytes: Buffer | string): Buffer => createHash('sha256').update(bytes).digest()
const pem = (der: ArrayBufferView): string => `-----BEGIN CERTIFICATE-----\n${b64(der).replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`
const spki = (key: KeyObject): Buffer => key.export({format: 'der', type: 'spki'})

/** A new authority; its certificates are valid from a minute ago (the log's times are whole seconds). */
export async function makeKeylessAuthority(): Promise<KeylessAuthority> {
  const clock = new Date(Date.now() - 60_000)
  const caKeys = generateKeyPairSync('ec', {namedCurve: 'P-256'})
  const ctKeys = generateKeyPairSync('ec', {namedCurve: 'P-256'})
  const logKeys = generateKeyPairSync('ec', {namedCurve: 'P-256'})
  const ctlog = await initializeCTLog(ctKeys, clock)
  const ca = await initializeCA(caKeys, ctlog, clock)
  const tlog = await initializeTLog(REKOR_URL, logKeys)
  const validFor = {start: '2020-01-01T00:00:00Z'}
  const key = (der: Buffer) => ({rawBytes: b64(der), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor})
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [{baseUrl: REKOR_URL, hashAlgorithm: 'SHA2_256', publicKey: key(spki(logKeys.publicKey)), logId: {keyId: b64(sha256(spki(logKeys.publicKey)))}}],
    certificateAuthorities: [{subject: {organization: 'kubeferry-test', commonName: 'fulcio'}, uri: 'https://fulcio.kubeferry.test', certChain: {certificates: [{rawBytes: b64(ca.rootCertificate)}]}, validFor}],
    ctlogs: [{baseUrl: 'https://ctfe.kubeferry.test', hashAlgorithm: 'SHA2_256', publicKey: key(spki(ctKeys.publicKey)), logId: {keyId: b64(ctlog.logID)}}],
    timestampAuthorities: [],
  }
  return {trustedRoot, ca, tlog}
}

export interface KeylessIdentity {
  subject: string
  issuer: string
}

/** A fresh key and its Fulcio certificate (DER) for `who`. */
async function certify(authority: KeylessAuthority, who: KeylessIdentity): Promise<{key: KeyObject; certificate: ArrayBufferView}> {
  const {privateKey, publicKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
  const certificate = await authority.ca.issueCertificate({
    publicKey: new Uint8Array(spki(publicKey)) as unknown as ArrayBufferView<ArrayBuffer>,
    subjectAltName: who.subject,
    extensions: [
      {oid: '1.3.6.1.4.1.57264.1.1', value: who.issuer, legacy: true},
      {oid: '1.3.6.1.4.1.57264.1.8', value: who.issuer},
    ],
  })
  return {key: privateKey, certificate}
}

/** What Rekor returned for one entry. */
async function logEntry(authority: KeylessAuthority, body: object): Promise<{body: string; integratedTime: number; logID: string; logIndex: number; verification: {signedEntryTimestamp: string; inclusionProof: {logIndex: number; treeSize: number; rootHash: string; hashes: string[]; checkpoint: string}}}> {
  const logged = (await authority.tlog.log(body)) as unknown as Record<string, never>
  return Object.values(logged)[0]
}

export interface KeylessVariant {
  /** A valid signature over a payload naming this digest instead of the subject. */
  signedSubject?: Digest
  /** The stored payload is another than the one signed (its reference changed after signing). */
  tamper?: boolean
}

/** The layer of cosign's legacy keyless `.sig` for `subject` in `reference` (registry/repository). */
export async function legacyKeylessLayer(authority: KeylessAuthority, who: KeylessIdentity, reference: string, subject: Digest, variant: KeylessVariant = {}): Promise<Layer> {
  const payload = simpleSigningPayload(reference, variant.signedSubject ?? subject)
  const stored = variant.tamper ? simpleSigningPayload(`${reference}-tampered`, subject) : payload
  const {key, certificate} = await certify(authority, who)
  const signature = sign('sha256', payload, key)
  const entry = await logEntry(authority, {apiVersion: '0.0.1', kind: 'hashedrekord', spec: {data: {hash: {algorithm: 'sha256', value: sha256(payload).toString('hex')}}, signature: {content: b64(signature), publicKey: {content: b64(Buffer.from(pem(certificate)))}}}})
  const rekorBundle = {SignedEntryTimestamp: entry.verification.signedEntryTimestamp, Payload: {body: entry.body, integratedTime: entry.integratedTime, logIndex: entry.logIndex, logID: entry.logID}}
  return {
    mediaType: COSIGN.simpleSigning,
    bytes: stored,
    annotations: {[COSIGN.signatureAnnotation]: b64(signature), [COSIGN.certificateAnnotation]: pem(certificate), 'dev.sigstore.cosign/chain': pem(authority.ca.rootCertificate), 'dev.sigstore.cosign/bundle': JSON.stringify(rekorBundle)},
  }
}

/** cosign's legacy keyless `.sig` (one layer) for `subject`. */
export async function pushLegacyKeyless(client: RegistryClient, repo: Reference, subject: Digest, authority: KeylessAuthority, who: KeylessIdentity, variant: KeylessVariant = {}): Promise<PushedArtifact> {
  const layers = [await legacyKeylessLayer(authority, who, `${repo.registry}/${repo.repository}`, subject, variant)]
  const tag = cosignTag(subject, 'sig')
  const pushed = await pushManifest(client, repo, tag, cosignConfig(layers), layers)
  return {kind: 'signature', subject, tag, digest: pushed.digest, size: pushed.size, mediaType: OCI_MANIFEST, blobs: pushed.blobs}
}

/** DSSE pre-authentication encoding. */
const pae = (type: string, body: Buffer): Buffer => Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body])

/** A Sigstore bundle v0.3 (DSSE, in-toto statement naming `signed`) by `who`. */
export async function keylessBundle(authority: KeylessAuthority, who: KeylessIdentity, name: string, signed: Digest, variant: {tamper?: boolean} = {}): Promise<Record<string, unknown>> {
  const statement = Buffer.from(JSON.stringify({_type: 'https://in-toto.io/Statement/v1', subject: [{name, digest: {sha256: signed.slice(7)}}], predicateType: COSIGN_SIGN_PREDICATE, predicate: {}}))
  const payloadType = 'application/vnd.in-toto+json'
  const {key, certificate} = await certify(authority, who)
  const signature = sign('sha256', pae(payloadType, statement), key)
  const envelope = {payload: b64(statement), payloadType, signatures: [{sig: b64(signature), keyid: ''}]}
  const entry = await logEntry(authority, {apiVersion: '0.0.1', kind: 'dsse', spec: {envelopeHash: {algorithm: 'sha256', value: sha256(JSON.stringify(envelope)).toString('hex')}, payloadHash: {algorithm: 'sha256', value: sha256(statement).toString('hex')}, signatures: [{signature: b64(signature), verifier: b64(Buffer.from(pem(certificate)))}]}})
  const stored = variant.tamper ? {...envelope, payload: b64(Buffer.from(statement.toString().replace(name, `${name}-tampered`)))} : envelope
  return {mediaType: BUNDLE_MEDIA_TYPE, verificationMaterial: verificationMaterial(certificate, entry, 'dsse'), dsseEnvelope: stored}
}

/** A Sigstore bundle v0.3 with a message signature over `artifact` (e.g. a manifest's own bytes) by `who`. */
export async function messageSignatureBundle(authority: KeylessAuthority, who: KeylessIdentity, artifact: Buffer): Promise<Record<string, unknown>> {
  const {key, certificate} = await certify(authority, who)
  const signature = sign('sha256', artifact, key)
  const entry = await logEntry(authority, {apiVersion: '0.0.1', kind: 'hashedrekord', spec: {data: {hash: {algorithm: 'sha256', value: sha256(artifact).toString('hex')}}, signature: {content: b64(signature), publicKey: {content: b64(Buffer.from(pem(certificate)))}}}})
  return {mediaType: BUNDLE_MEDIA_TYPE, verificationMaterial: verificationMaterial(certificate, entry, 'hashedrekord'), messageSignature: {messageDigest: {algorithm: 'SHA2_256', digest: b64(sha256(artifact))}, signature: b64(signature)}}
}

/** A v0.3 bundle's verification material: the leaf certificate and the log entry with its promise and proof. */
function verificationMaterial(certificate: ArrayBufferView, entry: Awaited<ReturnType<typeof logEntry>>, kind: string): Record<string, unknown> {
  const proof = entry.verification.inclusionProof
  return {
    certificate: {rawBytes: b64(certificate)},
    tlogEntries: [{
      logIndex: String(entry.logIndex),
      logId: {keyId: b64(Buffer.from(entry.logID, 'hex'))},
      kindVersion: {kind, version: '0.0.1'},
      integratedTime: String(entry.integratedTime),
      inclusionPromise: {signedEntryTimestamp: entry.verification.signedEntryTimestamp},
      inclusionProof: {logIndex: String(proof.logIndex), rootHash: b64(Buffer.from(proof.rootHash, 'hex')), treeSize: String(proof.treeSize), hashes: proof.hashes, checkpoint: {envelope: proof.checkpoint}},
      canonicalizedBody: entry.body,
    }],
    timestampVerificationData: {rfc3161Timestamps: []},
  }
}

/** The bundle as an OCI 1.1 referrer of `subject` (cosign's layout), listed under the referrers tag schema. */
export async function pushBundleReferrer(client: RegistryClient, repo: Reference, subject: {digest: Digest; size: number; mediaType: string}, authority: KeylessAuthority, who: KeylessIdentity, variant: KeylessVariant = {}): Promise<PushedArtifact> {
  const bundle = Buffer.from(JSON.stringify(await keylessBundle(authority, who, `${repo.registry}/${repo.repository}`, variant.signedSubject ?? subject.digest, variant)))
  const hex = sha256(bundle).toString('hex')
  const layers: Layer[] = [{mediaType: BUNDLE_MEDIA_TYPE, bytes: bundle, annotations: {'org.opencontainers.image.title': `sha256-${hex}.sigstore.json`}}]
  const pushed = await pushManifest(client, repo, 'digest', EMPTY, layers, {artifactType: BUNDLE_MEDIA_TYPE, subject: {mediaType: subject.mediaType, digest: subject.digest, size: subject.size}})
  const tag = await listReferrer(client, repo, subject.digest, {mediaType: OCI_MANIFEST, digest: pushed.digest, size: pushed.size, artifactType: BUNDLE_MEDIA_TYPE})
  return {kind: 'referrer', subject: subject.digest, tag, digest: pushed.digest, size: pushed.size, mediaType: OCI_MANIFEST, artifactType: BUNDLE_MEDIA_TYPE, blobs: pushed.blobs}
}
