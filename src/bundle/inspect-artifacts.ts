/**
 * `inspect`'s view of the publishers' artifacts an image carries (layout.ts BundleArtifact): what each is (signature,
 * attestation, SBOM, referrer), what it is about (the image or one platform), and for signatures by whom: cosign puts
 * a keyless signature's Fulcio certificate in the `dev.sigstore.cosign/certificate` annotation of its layer, whose
 * SubjectAltName is the signer's identity; a key-based signature has none ("key"). A referrer that is a Sigstore bundle
 * (cosign v3) carries the same in its layer, a JSON bundle whose verification material is the leaf certificate (DER)
 * or a public key hint. Nothing is verified here (that needs the keys or a trusted root); this says what is there.
 */
import {X509Certificate} from 'node:crypto'
import {sha256Digest, type Digest} from '../oci/digest.js'
import type {Descriptor} from '../oci/types.js'
import {treeNodes, walkTree, type WalkSource} from '../oci/walk.js'
import type {BundleArtifact, BundleImage} from './layout.js'

export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'
export const COSIGN_CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate'
/** A Sigstore bundle is a few kilobytes (certificate chain, log entry, signature). */
export const MAX_SIGSTORE_BUNDLE_BYTES = 256 * 1024
export const SIGSTORE_BUNDLE_MEDIA_TYPES = new Set(['application/vnd.dev.sigstore.bundle.v0.3+json', 'application/vnd.dev.sigstore.bundle+json;version=0.3'])

/** Where inspect reads artifacts from: the walker's view, and a blob's first bytes (a Sigstore bundle's JSON). */
export interface ArtifactSource extends WalkSource {
  /** At most `max` bytes from the start of a blob (unverified); undefined when the source does not hold it. */
  blobPrefix(digest: Digest, max: number): Promise<Buffer | undefined>
}

export interface InspectedArtifact {
  kind: BundleArtifact['kind']
  /** `image` (the image's own digest) or the platform whose manifest it is about. */
  about: string
  subject: string
  digest: string
  tag?: string
  artifactType?: string
  /**
   * signatures and Sigstore-bundle referrers: one entry per signature, the certificate's identity (SAN) for keyless
   * ones, `key` otherwise.
   */
  signedBy?: string[]
  /** attestations: the in-toto predicate types (from cosign's `predicateType` layer annotation). */
  predicateTypes?: string[]
  /** An index-type artifact (a multi-platform SBOM or attestation): each manifest under it, by platform (else digest). */
  manifests?: string[]
}

/**
 * The identity a certificate names: its SubjectAltName values (e-mail, URI), without their type prefixes. PEM text
 * (cosign's annotation) or DER bytes (a Sigstore bundle's rawBytes, decoded).
 */
export function certificateIdentity(certificate: string | Buffer): string {
  try {
    const san = new X509Certificate(certificate).subjectAltName ?? ''
    const names = san.split(/,\s*/).map((n) => n.replace(/^(email|URI|DNS|IP Address):/, '')).filter(Boolean)
    return names.length ? names.join(' ') : 'certificate without SubjectAltName'
  } catch {
    return 'unreadable certificate'
  }
}

/** A Sigstore bundle's verification material, as far as it names the signer. */
export interface SigstoreVerificationMaterial {
  certificate?: {rawBytes?: string}
  x509CertificateChain?: {certificates?: Array<{rawBytes?: string}>}
  publicKey?: unknown
}

/** Who a parsed Sigstore bundle says signed it (unchecked): its leaf certificate's identity, or `key` for a key hint. */
export function sigstoreBundleSigner(json: unknown): string {
  const material = (json as {verificationMaterial?: SigstoreVerificationMaterial} | null)?.verificationMaterial
  const raw = material?.certificate?.rawBytes ?? material?.x509CertificateChain?.certificates?.[0]?.rawBytes
  if (typeof raw === 'string' && raw !== '') return certificateIdentity(Buffer.from(raw, 'base64'))
  return material?.publicKey ? 'key' : 'Sigstore bundle without certificate or key'
}

/**
 * The signer of one Sigstore bundle layer, read whole from the bundle (it is small). What cannot be read is said, not
 * thrown: inspect describes the bundle, `verify` judges it.
 */
async function bundleLayerSigner(source: ArtifactSource, layer: Descriptor): Promise<string> {
  if (layer.size > MAX_SIGSTORE_BUNDLE_BYTES) return `unreadable Sigstore bundle (${layer.size} bytes, more than ${MAX_SIGSTORE_BUNDLE_BYTES})`
  const bytes = await source.blobPrefix(layer.digest, MAX_SIGSTORE_BUNDLE_BYTES + 1)
  // A few kilobytes: hashing them costs nothing, and what is named must be what the manifest points at.
  if (!bytes || bytes.length !== layer.size || sha256Digest(bytes) !== layer.digest) return 'unreadable Sigstore bundle (its blob is missing or does not match its digest: run kubeferry verify)'
  try {
    return sigstoreBundleSigner(JSON.parse(bytes.toString('utf8')))
  } catch {
    return 'unreadable Sigstore bundle (not JSON)'
  }
}

/** What `image` carries, each artifact's manifest read from the bundle (annotations are in the manifest). */
export async function inspectArtifacts(source: ArtifactSource, image: BundleImage): Promise<InspectedArtifact[]> {
  const platformOf = new Map(image.platforms.map((p) => [p.digest as string, p.platform]))
  const out: InspectedArtifact[] = []
  for (const a of image.artifacts ?? []) {
    const node = await walkTree(source, {digest: a.digest, size: a.size, mediaType: a.mediaType}, {what: `${image.name}: ${a.kind} ${a.digest}`})
    const nodes = node ? [...treeNodes(node)] : []
    const layers = nodes.flatMap((n) => n.manifest?.layers ?? [])
    const annotated = (key: string): string[] => layers.map((l) => l.annotations?.[key]).filter((v): v is string => typeof v === 'string' && v !== '')
    const signatures = layers.filter((l) => l.annotations?.[COSIGN_SIGNATURE_ANNOTATION] !== undefined)
    const sigstoreBundles = a.kind === 'referrer' && SIGSTORE_BUNDLE_MEDIA_TYPES.has(a.artifactType ?? '') ? layers.filter((l) => SIGSTORE_BUNDLE_MEDIA_TYPES.has(l.mediaType)) : []
    const signedBy = [
      ...signatures.map((l) => (l.annotations?.[COSIGN_CERTIFICATE_ANNOTATION] ? certificateIdentity(l.annotations[COSIGN_CERTIFICATE_ANNOTATION]) : 'key')),
      ...(await Promise.all(sigstoreBundles.map(async (l) => bundleLayerSigner(source, l)))),
    ]
    out.push({
      kind: a.kind,
      about: a.subject === image.digest ? 'image' : (platformOf.get(a.subject) ?? a.subject),
      subject: a.subject,
      digest: a.digest,
      ...(a.tag ? {tag: a.tag} : {}),
      ...(a.artifactType ? {artifactType: a.artifactType} : {}),
      ...(signedBy.length ? {signedBy} : {}),
      ...(a.kind === 'attestation' && annotated('predicateType').length ? {predicateTypes: annotated('predicateType')} : {}),
      ...(node?.kind === 'index' ? {manifests: nodes.filter((n) => n.manifest).map((n) => n.platform ?? n.raw.digest)} : {}),
    })
  }
  return out
}

/** One line per artifact for the text output: `signature (image) by key, krel-trust@…`. */
export function artifactLine(a: InspectedArtifact): string {
  const what = a.kind === 'referrer' ? `referrer ${a.artifactType ?? ''}`.trim() : a.kind === 'sbom' ? 'SBOM' : a.kind
  const detail = a.signedBy ? ` by ${a.signedBy.join(', ')}` : a.predicateTypes ? ` ${a.predicateTypes.join(', ')}` : ''
  const index = a.manifests ? ` index of ${a.manifests.join(', ')}` : ''
  return `${what} (${a.about})${index}${detail}  ${a.tag ?? a.digest.slice(0, 19)}`
}
