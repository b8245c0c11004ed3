/**
 * `inspect`'s view of the publishers' artifacts an image carries (layout.ts BundleArtifact): what each is (signature,
 * attestation, SBOM, referrer), what it is about (the image or one platform), and for signatures by whom: cosign puts
 * a keyless signature's Fulcio certificate in the `dev.sigstore.cosign/certificate` annotation of its layer, whose
 * SubjectAltName is the signer's identity; a key-based signature has none ("key"). Nothing is verified here (that
 * needs the keys or a trusted root); this says what is there.
 */
import {X509Certificate} from 'node:crypto'
import {treeNodes, walkTree, type WalkSource} from '../oci/walk.js'
import type {BundleArtifact, BundleImage} from './layout.js'

export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'
export const COSIGN_CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate'

export interface InspectedArtifact {
  kind: BundleArtifact['kind']
  /** `image` (the image's own digest) or the platform whose manifest it is about. */
  about: string
  subject: string
  digest: string
  tag?: string
  artifactType?: string
  /** signatures: one entry per signature, the certificate's identity (SAN) for keyless ones, `key` otherwise. */
  signedBy?: string[]
  /** attestations: the in-toto predicate types (from cosign's `predicateType` layer annotation). */
  predicateTypes?: string[]
  /** An index-type artifact (a multi-platform SBOM or attestation): each manifest under it, by platform (else digest). */
  manifests?: string[]
}

/** The identity a certificate names: its SubjectAltName values (e-mail, URI), without their type prefixes. */
export function certificateIdentity(pem: string): string {
  try {
    const san = new X509Certificate(pem).subjectAltName ?? ''
    const names = san.split(/,\s*/).map((n) => n.replace(/^(email|URI|DNS|IP Address):/, '')).filter(Boolean)
    return names.length ? names.join(' ') : 'certificate without SubjectAltName'
  } catch {
    return 'unreadable certificate'
  }
}

/** What `image` carries, each artifact's manifest read from the bundle (annotations are in the manifest). */
export async function inspectArtifacts(source: WalkSource, image: BundleImage): Promise<InspectedArtifact[]> {
  const platformOf = new Map(image.platforms.map((p) => [p.digest as string, p.platform]))
  const out: InspectedArtifact[] = []
  for (const a of image.artifacts ?? []) {
    const node = await walkTree(source, {digest: a.digest, size: a.size, mediaType: a.mediaType}, {what: `${image.name}: ${a.kind} ${a.digest}`})
    const nodes = node ? [...treeNodes(node)] : []
    const layers = nodes.flatMap((n) => n.manifest?.layers ?? [])
    const annotated = (key: string): string[] => layers.map((l) => l.annotations?.[key]).filter((v): v is string => typeof v === 'string' && v !== '')
    const signatures = layers.filter((l) => l.annotations?.[COSIGN_SIGNATURE_ANNOTATION] !== undefined)
    out.push({
      kind: a.kind,
      about: a.subject === image.digest ? 'image' : (platformOf.get(a.subject) ?? a.subject),
      subject: a.subject,
      digest: a.digest,
      ...(a.tag ? {tag: a.tag} : {}),
      ...(a.artifactType ? {artifactType: a.artifactType} : {}),
      ...(signatures.length ? {signedBy: signatures.map((l) => (l.annotations?.[COSIGN_CERTIFICATE_ANNOTATION] ? certificateIdentity(l.annotations[COSIGN_CERTIFICATE_ANNOTATION]) : 'key'))} : {}),
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
