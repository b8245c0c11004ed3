/**
 * cosign's legacy keyless signature (what registry.k8s.io images carry today: a `.sig` tag manifest) mapped onto a
 * Sigstore bundle, so that it is verified by the one path every keyless signature takes (keyless.ts, @sigstore/verify).
 * A layer of the `.sig` manifest is the simple-signing payload; its annotations hold
 *  - `dev.cosignproject.cosign/signature`: base64 signature over the payload's bytes (by the certificate's key);
 *  - `dev.sigstore.cosign/certificate`: the Fulcio leaf certificate (PEM), `dev.sigstore.cosign/chain` the CA chain;
 *  - `dev.sigstore.cosign/bundle`: Rekor's promise of inclusion, `{SignedEntryTimestamp, Payload: {body,
 *    integratedTime, logIndex, logID}}` (the SET signs the canonical JSON of Payload; body is the log entry, a
 *    hashedrekord naming the payload's sha256, the signature and the certificate).
 * The bundle made is a v0.1 bundle (x509 chain, one tlog entry with its inclusion promise, a message signature whose
 * digest is the payload's sha256): exactly what cosign's own verifier checks, nothing invented.
 */
import {createHash} from 'node:crypto'
import {COSIGN_CERTIFICATE_ANNOTATION, COSIGN_SIGNATURE_ANNOTATION} from '../bundle/inspect-artifacts.js'

export const COSIGN_CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain'
export const COSIGN_BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle'
const BUNDLE_V01_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle+json;version=0.1'

/** The DER bytes (base64) of each certificate of a PEM text, in order. */
export function pemCertificates(pem: string): string[] {
  const out: string[] = []
  for (const match of pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) out.push(Buffer.from(match[1].replace(/\s+/g, ''), 'base64').toString('base64'))
  return out
}

interface RekorPromise {
  SignedEntryTimestamp?: unknown
  Payload?: {body?: unknown; integratedTime?: unknown; logIndex?: unknown; logID?: unknown}
}

/** The Sigstore bundle (JSON) of a legacy keyless signature layer over `payload`, or why there is none. */
export function legacyKeylessBundle(annotations: Record<string, string>, payload: Buffer): Record<string, unknown> | string {
  const signature = annotations[COSIGN_SIGNATURE_ANNOTATION]
  const leaf = pemCertificates(annotations[COSIGN_CERTIFICATE_ANNOTATION] ?? '')
  const chain = pemCertificates(annotations[COSIGN_CHAIN_ANNOTATION] ?? '')
  if (!signature) return `it has no ${COSIGN_SIGNATURE_ANNOTATION} annotation (no signature)`
  if (leaf.length !== 1) return `its ${COSIGN_CERTIFICATE_ANNOTATION} annotation is not one PEM certificate`
  const promiseText = annotations[COSIGN_BUNDLE_ANNOTATION]
  if (!promiseText) return `it has no ${COSIGN_BUNDLE_ANNOTATION} annotation (no transparency log entry: nothing proves when the short-lived certificate signed)`
  let promise: RekorPromise
  let body: {kind?: unknown; apiVersion?: unknown}
  try {
    promise = JSON.parse(promiseText) as RekorPromise
    body = JSON.parse(Buffer.from(String(promise.Payload?.body ?? ''), 'base64').toString('utf8')) as typeof body
  } catch {
    return `its ${COSIGN_BUNDLE_ANNOTATION} annotation is not Rekor's JSON (SignedEntryTimestamp and Payload)`
  }
  const p = promise.Payload!
  if (typeof promise.SignedEntryTimestamp !== 'string' || typeof p.body !== 'string' || typeof p.integratedTime !== 'number' || typeof p.logIndex !== 'number' || typeof p.logID !== 'string' || !/^[0-9a-f]+$/i.test(p.logID)) {
    return `its ${COSIGN_BUNDLE_ANNOTATION} annotation lacks SignedEntryTimestamp or Payload {body, integratedTime, logIndex, logID}`
  }
  if (typeof body.kind !== 'string' || typeof body.apiVersion !== 'string') return 'its transparency log entry has no kind and apiVersion'
  return {
    mediaType: BUNDLE_V01_MEDIA_TYPE,
    verificationMaterial: {
      x509CertificateChain: {certificates: [...leaf, ...chain].map((rawBytes) => ({rawBytes}))},
      tlogEntries: [
        {
          logIndex: String(p.logIndex),
          logId: {keyId: Buffer.from(p.logID, 'hex').toString('base64')},
          kindVersion: {kind: body.kind, version: body.apiVersion},
          integratedTime: String(p.integratedTime),
          inclusionPromise: {signedEntryTimestamp: promise.SignedEntryTimestamp},
          canonicalizedBody: p.body,
        },
      ],
      timestampVerificationData: {rfc3161Timestamps: []},
    },
    messageSignature: {messageDigest: {algorithm: 'SHA2_256', digest: createHash('sha256').update(payload).digest('base64')}, signature},
  }
}
