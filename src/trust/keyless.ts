/**
 * Keyless signatures checked with sigstore-js (@sigstore/verify) against a trusted root, offline (issue 19 d4). Loaded
 * only on the keyless path (dynamic import): nothing else pays for @sigstore's modules, and the single file's start-up
 * snapshot does not hold them. What is checked, in @sigstore/verify's order: the certificate chains to a Fulcio CA of
 * the trusted root at the time the transparency log recorded (with its SCT from a CT log of the root); the log entry's
 * promise (SET) or inclusion proof is signed by a Rekor log of the root; the entry's body matches this signature and
 * the signed content; the signature holds over the content. The identity (SAN, issuer) is returned, for the policy.
 */
import {bundleFromJSON} from '@sigstore/bundle'
import {TrustedRoot} from '@sigstore/protobuf-specs'
import {toSignedEntity, toTrustMaterial, Verifier} from '@sigstore/verify'
import {KubeferryError} from '../oci/errors.js'
import type {TrustedRootFile} from './trusted-root.js'

export interface KeylessIdentityFound {
  subject: string
  issuer: string
}

export type KeylessOutcome = {identity: KeylessIdentityFound} | {reason: string}

export interface KeylessVerifier {
  origin: string
  /** Verify a Sigstore bundle (JSON); `artifact`: the bytes a message signature signs (a DSSE envelope holds its own). */
  verify(bundle: unknown, artifact?: Buffer): KeylessOutcome
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** What a @sigstore/verify error means for an operator. */
function reasonOf(error: unknown, origin: string): string {
  const code = (error as {code?: string}).code ?? ''
  if (code === 'TLOG_BODY_ERROR' || code === 'SIGNATURE_ERROR') return `the signed content was altered after signing (tampered): ${message(error)}`
  if (code === 'CERTIFICATE_ERROR' || code === 'PUBLIC_KEY_ERROR') return `its certificate is not trusted by the trusted root ${origin}: ${message(error)}`
  if (code.startsWith('TLOG') || code === 'TIMESTAMP_ERROR') return `its transparency log entry is not trusted by the trusted root ${origin}: ${message(error)}`
  return `it does not verify: ${message(error)}`
}

/** A verifier for `root` (its CAs, logs and CT logs); a root @sigstore cannot read is refused, naming it. */
export function keylessVerifier(root: TrustedRootFile): KeylessVerifier {
  let verifier: Verifier
  try {
    verifier = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(root.json)))
  } catch (error) {
    throw new KubeferryError('INVALID_ARGUMENT', `trusted root ${root.origin} cannot be used: ${message(error)}`, {hint: 'give the Sigstore trusted_root.json fetched on the connected side; nothing was checked'})
  }
  return {
    origin: root.origin,
    verify(json: unknown, artifact?: Buffer): KeylessOutcome {
      let entity
      try {
        entity = toSignedEntity(bundleFromJSON(json), artifact)
      } catch (error) {
        return {reason: `it is not a valid Sigstore bundle: ${message(error)}`}
      }
      try {
        const signer = verifier.verify(entity)
        const subject = signer.identity?.subjectAlternativeName
        const issuer = signer.identity?.extensions?.issuer
        if (!subject || !issuer) return {reason: 'its certificate names no identity (SubjectAltName and the Fulcio issuer extension)'}
        return {identity: {subject, issuer}}
      } catch (error) {
        return {reason: reasonOf(error, root.origin)}
      }
    },
  }
}
