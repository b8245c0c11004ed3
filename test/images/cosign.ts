/**
 * Test fixtures for the publishers' artifacts (issue 19): signatures, attestations and SBOMs laid out in the registry
 * exactly as cosign writes them (its signature spec: tag `sha256-<hex>.sig|.att|.sbom` of the subject's digest, an
 * OCI image manifest whose layers are the payloads), plus an OCI 1.1 referrer (a manifest with `subject` and
 * `artifactType`) published the way a client does on a registry without the referrers API (distribution 2.8): the
 * manifest by digest, and the referrers tag schema index at tag `sha256-<hex>` of the subject.
 *
 *  - `.sig`: one layer per signature, `application/vnd.dev.cosign.simplesigning.v1+json`, holding the simple-signing
 *    payload (`critical.image.docker-manifest-digest` = the subject), annotated `dev.cosignproject.cosign/signature`
 *    = base64 of an ECDSA P-256 / SHA-256 signature of the payload bytes (the key is made here, per run). A keyless
 *    signature also carries `dev.sigstore.cosign/certificate` (PEM, the identity in its SubjectAltName).
 *  - `.att`: a DSSE envelope (`application/vnd.dsse.envelope.v1+json`) of an in-toto statement about the subject.
 *  - `.sbom`: an SPDX JSON document (`text/spdx+json`, as `cosign attach sbom` stores it).
 */
import {execFileSync} from 'node:child_process'
import {createHash, generateKeyPairSync, sign, type KeyObject} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import type {RegistryClient} from '../../src/registry/client.js'
import type {Digest} from '../../src/oci/digest.js'
import type {Reference} from '../../src/oci/reference.js'

export const COSIGN = {
  simpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  signatureAnnotation: 'dev.cosignproject.cosign/signature',
  certificateAnnotation: 'dev.sigstore.cosign/certificate',
  dsse: 'application/vnd.dsse.envelope.v1+json',
  spdx: 'text/spdx+json',
} as const
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
export const EMPTY = {mediaType: 'application/vnd.oci.empty.v1+json', bytes: Buffer.from('{}')}

export interface Signer {
  key: KeyObject
  publicPem: string
  /** PEM certificate naming `identity` (keyless-style signatures), when made. */
  certificate?: string
  identity?: string
}

/** A P-256 key (cosign's default); with `identity`, a self-signed certificate whose SAN is that e-mail (keyless-style). */
export function makeSigner(identity?: string): Signer {
  const {privateKey, publicKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
  const signer: Signer = {key: privateKey, publicPem: publicKey.export({type: 'spki', format: 'pem'}).toString()}
  if (identity) {
    const dir = mkdtempSync(join(tmpdir(), 'kf-cosign-'))
    try {
      writeFileSync(join(dir, 'key.pem'), privateKey.export({type: 'pkcs8', format: 'pem'}))
      execFileSync('openssl', ['req', '-x509', '-new', '-key', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/O=sigstore.dev', '-addext', `subjectAltName=email:${identity}`], {stdio: 'pipe'})
      signer.certificate = readFileSync(join(dir, 'cert.pem'), 'utf8')
      signer.identity = identity
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  }
  return signer
}

const sha = (bytes: Buffer): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value))

export interface Layer {
  mediaType: string
  bytes: Buffer
  annotations?: Record<string, string>
}

/** What was pushed for one subject, for the tests to compare with. */
export interface PushedArtifact {
  kind: 'signature' | 'attestation' | 'sbom' | 'referrer'
  subject: Digest
  /** cosign's tag (`sha256-<hex>.sig`), or the referrers tag schema tag for a referrer. */
  tag: string
  digest: Digest
  size: number
  mediaType: string
  artifactType?: string
  blobs: Digest[]
}

/** The tag cosign uses for `suffix` (sig, att, sbom) of a subject digest; '' gives the referrers tag schema's. */
export function cosignTag(subject: string, suffix: string): string {
  return `sha256-${subject.slice('sha256:'.length)}${suffix ? `.${suffix}` : ''}`
}

export async function pushManifest(client: RegistryClient, repo: Reference, where: string, config: Layer, layers: Layer[], extra: Record<string, unknown> = {}): Promise<{digest: Digest; size: number; bytes: Buffer; blobs: Digest[]}> {
  const blobs = [config, ...layers]
  for (const blob of blobs) {
    const digest = sha(blob.bytes)
    if (!(await client.blobExists(repo, digest))) await client.uploadBlob(repo, {digest, size: blob.bytes.length}, async () => Readable.from([blob.bytes]))
  }
  const descriptor = (b: Layer) => ({mediaType: b.mediaType, size: b.bytes.length, digest: sha(b.bytes), ...(b.annotations ? {annotations: b.annotations} : {})})
  const bytes = json({schemaVersion: 2, mediaType: OCI_MANIFEST, ...('artifactType' in extra ? {artifactType: extra.artifactType} : {}), config: descriptor(config), layers: layers.map(descriptor), ...('subject' in extra ? {subject: extra.subject} : {})})
  const digest = sha(bytes)
  await client.putManifest(repo, where === 'digest' ? digest : where, {bytes, digest, mediaType: OCI_MANIFEST})
  return {digest, size: bytes.length, bytes, blobs: blobs.map((b) => sha(b.bytes))}
}

/** cosign's config for a signature image: one diff_id per layer. */
export function cosignConfig(layers: Layer[]): Layer {
  return {mediaType: OCI_CONFIG, bytes: json({architecture: '', config: {}, created: '0001-01-01T00:00:00Z', history: [{created: '0001-01-01T00:00:00Z'}], os: '', rootfs: {type: 'layers', diff_ids: layers.map((l) => sha(l.bytes))}})}
}

/** The simple-signing payload cosign signs for `subject` in `dockerReference` (registry/repository). */
export function simpleSigningPayload(dockerReference: string, subject: string): Buffer {
  return json({critical: {identity: {'docker-reference': dockerReference}, image: {'docker-manifest-digest': subject}, type: 'cosign container image signature'}, optional: null})
}

/**
 * Broken variants of a `.sig`, for the verification tests: `payloadSubject` signs (validly) a payload naming another
 * digest; `tamper` stores a payload other than the one signed (its docker-reference changed after signing).
 */
export interface SignatureVariant {
  payloadSubject?: Digest
  tamper?: boolean
}

/** `.sig` with one signature layer per signer. */
export async function pushSignature(client: RegistryClient, repo: Reference, subject: Digest, signers: Signer[], variant: SignatureVariant = {}): Promise<PushedArtifact> {
  const payload = simpleSigningPayload(`${repo.registry}/${repo.repository}`, variant.payloadSubject ?? subject)
  const stored = variant.tamper ? simpleSigningPayload(`${repo.registry}/${repo.repository}-tampered`, subject) : payload
  const layers: Layer[] = signers.map((s) => ({
    mediaType: COSIGN.simpleSigning,
    bytes: stored,
    annotations: {[COSIGN.signatureAnnotation]: sign('sha256', payload, s.key).toString('base64'), ...(s.certificate ? {[COSIGN.certificateAnnotation]: s.certificate, 'dev.sigstore.cosign/chain': ''} : {})},
  }))
  const tag = cosignTag(subject, 'sig')
  const pushed = await pushManifest(client, repo, tag, cosignConfig(layers), layers)
  return {kind: 'signature', subject, tag, digest: pushed.digest, size: pushed.size, mediaType: OCI_MANIFEST, blobs: pushed.blobs}
}

/** DSSE pre-authentication encoding (what a DSSE signature signs). */
function pae(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body])
}

/** `.att`: a DSSE envelope of an in-toto statement (SLSA provenance predicate) about the subject. */
export async function pushAttestation(client: RegistryClient, repo: Reference, subject: Digest, signer: Signer): Promise<PushedArtifact> {
  const predicateType = 'https://slsa.dev/provenance/v0.2'
  const statement = json({_type: 'https://in-toto.io/Statement/v0.1', predicateType, subject: [{name: `${repo.registry}/${repo.repository}`, digest: {sha256: subject.slice(7)}}], predicate: {builder: {id: 'https://kubeferry.test/builder'}, buildType: 'https://kubeferry.test/fixture'}})
  const payloadType = 'application/vnd.in-toto+json'
  const envelope = json({payloadType, payload: statement.toString('base64'), signatures: [{keyid: '', sig: sign('sha256', pae(payloadType, statement), signer.key).toString('base64')}]})
  const layers: Layer[] = [{mediaType: COSIGN.dsse, bytes: envelope, annotations: {predicateType}}]
  const tag = cosignTag(subject, 'att')
  const pushed = await pushManifest(client, repo, tag, cosignConfig(layers), layers)
  return {kind: 'attestation', subject, tag, digest: pushed.digest, size: pushed.size, mediaType: OCI_MANIFEST, blobs: pushed.blobs}
}

export function spdxDocument(name: string, subject: string): Buffer {
  return json({spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT', name, documentNamespace: `https://kubeferry.test/spdx/${subject.slice(7, 23)}`, creationInfo: {created: '2024-01-01T00:00:00Z', creators: ['Tool: kubeferry-test']}, packages: [{SPDXID: 'SPDXRef-Package-busybox', name: 'busybox', versionInfo: '1.36.1', downloadLocation: 'NOASSERTION'}]})
}

/** `.sbom`: an SPDX JSON document, as `cosign attach sbom` stores it. */
export async function pushSbom(client: RegistryClient, repo: Reference, subject: Digest): Promise<PushedArtifact> {
  const layers: Layer[] = [{mediaType: COSIGN.spdx, bytes: spdxDocument(repo.repository, subject)}]
  const tag = cosignTag(subject, 'sbom')
  const pushed = await pushManifest(client, repo, tag, cosignConfig(layers), layers)
  return {kind: 'sbom', subject, tag, digest: pushed.digest, size: pushed.size, mediaType: OCI_MANIFEST, blobs: pushed.blobs}
}

/**
 * An OCI 1.1 referrer (an SPDX SBOM with `artifactType` and `subject`), published as a client does on a registry
 * without the referrers API: the manifest by digest, then the referrers tag schema index (`sha256-<hex>` of the
 * subject) listing it (with any referrers the index already listed).
 */
export async function pushReferrer(client: RegistryClient, repo: Reference, subject: {digest: Digest; size: number; mediaType: string}): Promise<PushedArtifact> {
  const artifactType = 'application/spdx+json'
  const layers: Layer[] = [{mediaType: artifactType, bytes: spdxDocument(`${repo.repository} (referrer)`, subject.digest), annotations: {'org.opencontainers.image.title': 'sbom.spdx.json'}}]
  const pushed = await pushManifest(client, repo, 'digest', EMPTY, layers, {artifactType, subject: {mediaType: subject.mediaType, digest: subject.digest, size: subject.size}})
  const tag = await listReferrer(client, repo, subject.digest, {mediaType: OCI_MANIFEST, digest: pushed.digest, size: pushed.size, artifactType})
  return {kind: 'referrer', subject: subject.digest, tag, digest: pushed.digest, size: pushed.size, mediaType: OCI_MANIFEST, artifactType, blobs: pushed.blobs}
}

/** Add a referrer to the referrers tag schema index of `subject` (what a client does without the referrers API). */
export async function listReferrer(client: RegistryClient, repo: Reference, subject: Digest, entry: {mediaType: string; digest: Digest; size: number; artifactType: string}): Promise<string> {
  const tag = cosignTag(subject, '')
  let listed: Array<{digest: string}> = []
  try {
    listed = (JSON.parse((await client.getManifest({...repo, tag})).raw.bytes.toString('utf8')) as {manifests: Array<{digest: string}>}).manifests
  } catch {
    listed = [] // no referrers yet: the tag does not exist
  }
  const index = json({schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...listed.filter((d) => d.digest !== entry.digest), entry]})
  await client.putManifest(repo, tag, {bytes: index, digest: sha(index), mediaType: OCI_INDEX})
  return tag
}

/**
 * The fixture set for one image already in `repo` (index `index`, platform manifest `platform`): on the index a `.sig`
 * with a key-based and a keyless-style signature, an `.att`, an `.sbom` and a referrer; on the platform manifest a
 * key-based `.sig`. Returns everything pushed.
 */
export async function pushArtifactSet(client: RegistryClient, repo: Reference, index: {digest: Digest; size: number; mediaType: string}, platform: Digest, signers: {key: Signer; keyless: Signer}): Promise<PushedArtifact[]> {
  return [
    await pushSignature(client, repo, index.digest, [signers.key, signers.keyless]),
    await pushAttestation(client, repo, index.digest, signers.key),
    await pushSbom(client, repo, index.digest),
    await pushReferrer(client, repo, index),
    await pushSignature(client, repo, platform, [signers.key]),
  ]
}
