/**
 * One keyless signature checked (issue 19 d4), in either form registries hold them:
 *  - a layer of cosign's legacy `.sig` manifest (Fulcio certificate and Rekor promise in annotations; keyless-legacy.ts
 *    maps it onto a Sigstore bundle), signing a simple-signing payload that names the image's manifest digest;
 *  - an OCI 1.1 referrer whose one layer is a Sigstore bundle (cosign 2.4+ `--new-bundle-format`, cosign v3's default):
 *    a DSSE envelope of an in-toto statement (predicate `https://sigstore.dev/cosign/sign/v1`) whose subject is the
 *    image's digest, or a message signature over the manifest's own bytes.
 * Both go through keyless.ts (@sigstore/verify); then the identity is held to the policy, then the signed digest to the
 * digest the signature is carried for. Without a trusted root nothing is checked: "keyless", never verified.
 */
import {isKubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import type {Descriptor} from '../oci/types.js'
import type {BundleArtifact} from '../bundle/layout.js'
import {certificateIdentity, COSIGN_CERTIFICATE_ANNOTATION, MAX_SIGSTORE_BUNDLE_BYTES, SIGSTORE_BUNDLE_MEDIA_TYPES, sigstoreBundleSigner, type SigstoreVerificationMaterial} from '../bundle/inspect-artifacts.js'
import {describeIdentity, identityAllowed, type KeylessIdentity} from './image-policy.js'
import type {KeylessVerifier} from './keyless.js'
import type {SignatureCheck, SignatureSource} from './signature-check.js'

export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1'
const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json'

export interface KeylessContext {
  /** The identities the image's policy entry allows. */
  identities: KeylessIdentity[]
  /** The verifier for the trusted root in use; undefined: none is (keyless signatures are reported, not checked). */
  verifier?: () => Promise<KeylessVerifier>
}

/** Not worth checking (nor loading @sigstore for): no keyless identity would be accepted. */
const NO_IDENTITY = (named: string): string => `keyless signature by ${named}, but the policy allows no keyless identity for this image (keys only)`
const NO_ROOT = 'keyless, not checked: no trusted root (build the bundle with create --trusted-root FILE, or give --trusted-root FILE)'

/** Read a small layer (payload or bundle), at most `max` bytes, verified by digest as it flows. */
export type ReadLayer = (layer: Descriptor, max: number) => Promise<Buffer>

function judged(base: Omit<SignatureCheck, 'outcome'>, found: {subject: string; issuer: string}, identities: KeylessIdentity[], signedDigest: string | undefined, subject: Digest): SignatureCheck {
  const who = describeIdentity(found)
  const refused = (reason: string): SignatureCheck => ({...base, outcome: 'refused', identity: found.subject, issuer: found.issuer, reason})
  if (identities.length === 0) return refused(`signed keylessly by ${who}, but the policy allows no keyless identity for this image (keys only)`)
  if (!identityAllowed(identities, found)) return refused(`signed keylessly by ${who}, not by an identity the policy allows: expected ${identities.map(describeIdentity).join(' or ')}`)
  if (signedDigest !== subject) return refused(`signed keylessly by ${who}, but for another digest: its payload names ${signedDigest ?? 'no digest'}, the signature is carried for ${subject}`)
  return {...base, outcome: 'verified', identity: found.subject, issuer: found.issuer}
}

/** A layer of a legacy `.sig` whose certificate annotation makes it keyless. */
export async function checkLegacyKeyless(base: Omit<SignatureCheck, 'outcome'>, layer: Descriptor, read: ReadLayer, maxPayload: number, digestOf: (payload: Buffer) => string | undefined, ctx: KeylessContext): Promise<SignatureCheck> {
  const annotations = layer.annotations ?? {}
  const named = certificateIdentity(annotations[COSIGN_CERTIFICATE_ANNOTATION]!)
  if (!ctx.verifier) return {...base, outcome: 'keyless', identity: named, reason: NO_ROOT}
  const refused = (reason: string): SignatureCheck => ({...base, outcome: 'refused', identity: named, reason})
  if (ctx.identities.length === 0) return refused(NO_IDENTITY(named))
  let payload: Buffer
  try {
    payload = await read(layer, maxPayload)
  } catch (error) {
    if (!isKubeferryError(error)) throw error
    return refused(`its payload ${layer.digest} cannot be read: ${error.message}`)
  }
  const {legacyKeylessBundle} = await import('./keyless-legacy.js')
  const bundle = legacyKeylessBundle(annotations, payload)
  if (typeof bundle === 'string') return refused(`keyless signature by ${named}, but ${bundle}`)
  const outcome = (await ctx.verifier()).verify(bundle, payload)
  if ('reason' in outcome) return refused(`keyless signature by ${named}: ${outcome.reason}`)
  return judged(base, outcome.identity, ctx.identities, digestOf(payload), base.subject)
}

interface SerializedBundle {
  verificationMaterial?: SigstoreVerificationMaterial
  dsseEnvelope?: {payload?: string; payloadType?: string}
  messageSignature?: {messageDigest?: {algorithm?: string; digest?: string}}
}

/** What a bundle signs: the digest it names, or why it is no image signature. */
function signedDigestOf(json: SerializedBundle): {digest?: string} | string {
  if (json.dsseEnvelope) {
    if (json.dsseEnvelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return `its DSSE envelope holds ${json.dsseEnvelope.payloadType ?? 'no payload type'}, not an in-toto statement`
    let statement: {predicateType?: unknown; subject?: Array<{digest?: {sha256?: unknown}}>}
    try {
      statement = JSON.parse(Buffer.from(json.dsseEnvelope.payload ?? '', 'base64').toString('utf8')) as typeof statement
    } catch {
      return 'its in-toto statement is not JSON'
    }
    if (statement.predicateType !== COSIGN_SIGN_PREDICATE) return `it is an attestation (predicate ${JSON.stringify(statement.predicateType)}), not an image signature (${COSIGN_SIGN_PREDICATE})`
    const hexes = (Array.isArray(statement.subject) ? statement.subject : []).map((s) => s?.digest?.sha256).filter((h): h is string => typeof h === 'string')
    return {digest: hexes.length > 0 ? hexes.map((h) => `sha256:${h}`).join(', ') : undefined}
  }
  const md = json.messageSignature?.messageDigest
  if (!md?.digest || md.algorithm !== 'SHA2_256') return 'it signs no SHA-256 message digest'
  return {digest: `sha256:${Buffer.from(md.digest, 'base64').toString('hex')}`}
}

/** Every layer of a referrer that is a Sigstore bundle, each checked. */
export async function checkBundleReferrer(source: SignatureSource, artifact: BundleArtifact, layers: Descriptor[], read: ReadLayer, ctx: KeylessContext): Promise<SignatureCheck[]> {
  const out: SignatureCheck[] = []
  for (const [i, layer] of layers.entries()) {
    const base = {signature: artifact.digest, layer: i + 1, subject: artifact.subject}
    const refused = (reason: string, identity?: string): SignatureCheck => ({...base, outcome: 'refused', ...(identity ? {identity} : {}), reason})
    if (!SIGSTORE_BUNDLE_MEDIA_TYPES.has(layer.mediaType)) {
      out.push(refused(`layer ${i + 1} is ${layer.mediaType}, not a Sigstore bundle`))
      continue
    }
    let json: SerializedBundle
    try {
      json = JSON.parse((await read(layer, MAX_SIGSTORE_BUNDLE_BYTES)).toString('utf8')) as SerializedBundle
    } catch (error) {
      if (isKubeferryError(error)) out.push(refused(`its Sigstore bundle ${layer.digest} cannot be read: ${error.message}`))
      else if (error instanceof SyntaxError) out.push(refused('its Sigstore bundle is not JSON'))
      else throw error
      continue
    }
    const named = sigstoreBundleSigner(json)
    if (json.verificationMaterial?.publicKey) {
      out.push(refused('a Sigstore bundle signed with a key, not a certificate (kubeferry checks key signatures in cosign .sig form, with --cosign-key)'))
      continue
    }
    if (!ctx.verifier) {
      out.push({...base, outcome: 'keyless', identity: named, reason: NO_ROOT})
      continue
    }
    if (ctx.identities.length === 0) {
      out.push(refused(NO_IDENTITY(named), named))
      continue
    }
    const signed = signedDigestOf(json)
    if (typeof signed === 'string') {
      out.push(refused(`keyless signature by ${named}, but ${signed}`, named))
      continue
    }
    // A message signature signs the manifest's own bytes; those of the digest it names, when the bundle holds them.
    const artifactBytes = json.messageSignature && signed.digest ? await source.manifest(signed.digest as Digest) : undefined
    if (json.messageSignature && !artifactBytes) {
      out.push(refused(`keyless signature by ${named}, but for another digest: it signs ${signed.digest ?? 'no digest'}, the signature is carried for ${artifact.subject}`, named))
      continue
    }
    const outcome = (await ctx.verifier()).verify(json, artifactBytes)
    if ('reason' in outcome) {
      out.push(refused(`keyless signature by ${named}: ${outcome.reason}`, named))
      continue
    }
    const digest = signed.digest?.split(', ').includes(artifact.subject) ? artifact.subject : signed.digest
    out.push(judged(base, outcome.identity, ctx.identities, digest, artifact.subject))
  }
  return out
}
