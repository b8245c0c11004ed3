/**
 * What the signature checks read (a bundle, or at create the plan and its registry) and what each signature came to:
 * the shapes shared by the key-based check (cosign.ts), the keyless ones (keyless-checks.ts) and the report
 * (verify-images.ts).
 */
import type {Readable} from 'node:stream'
import type {Digest} from '../oci/digest.js'
import type {Descriptor} from '../oci/types.js'

/** Where the signature manifests and payloads are read from: a bundle, or (create) the plan and its registry. */
export interface SignatureSource {
  /** Manifest bytes by digest (checked by the walker), undefined when absent. */
  manifest(digest: Digest): Promise<Buffer | undefined>
  /** A blob's bytes, verified against its digest while they flow. */
  blob(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<Readable | NodeJS.ReadableStream>
}

/** What one signature (one layer of a `.sig` manifest) came to. */
export interface SignatureCheck {
  /** The `.sig` manifest's digest and the layer's position in it (1-based). */
  signature: Digest
  layer: number
  /** The digest the signature is recorded about (the image's or a platform manifest's). */
  subject: Digest
  outcome: 'verified' | 'keyless' | 'refused'
  /** verified: the key (file, or `policy FILE entry N` for an inline key) and its keyid. */
  key?: {name: string; keyid: string}
  /** keyless: the identity (SubjectAltName) its certificate names; verified or refused keyless: checked, or not. */
  identity?: string
  /** keyless, once the certificate is verified: its OIDC issuer. */
  issuer?: string
  /** Why it does not count (refused), or the "not yet" of a keyless one. */
  reason?: string
}
