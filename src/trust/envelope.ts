/**
 * What a bundle signature is (issue 19): an in-toto Statement naming the bundle (its sha256 as the subject; its size
 * and the sha256 of its kubeferry/bundle.json in the predicate), in a DSSE envelope, in `NAME.tar.sig.json` beside
 * the bundle. Several signatures of the same statement are several entries of the envelope's `signatures` array, each
 * with `keyid` = sha256 (hex) of the signer's public key as DER SubjectPublicKeyInfo.
 *
 * The envelope is written in one fixed layout (one member a line, one signature a line) so that install.sh and the
 * README's plain-openssl recipe read it with sed/awk; the statement is compact JSON in a fixed member order. Signing
 * is over DSSE's PAE ("DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal); ECDSA signatures
 * are ASN.1 DER (what node:crypto makes, what `openssl dgst -verify` and sigstore read), Ed25519 the raw 64 bytes.
 */
import {KubeferryError} from '../oci/errors.js'

export const PAYLOAD_TYPE = 'application/vnd.in-toto+json'
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
export const PREDICATE_TYPE = 'https://kubeferry.dev/bundle/v1'
/** Larger than any envelope kubeferry writes (a statement and a few signatures): a bigger file is not read. */
export const MAX_ENVELOPE_BYTES = 256 * 1024

/** `dir/k8s.tar` → `dir/k8s.tar.sig.json` (for a bundle in parts: beside NAME.tar.sha256, named after the whole). */
export function signatureFileFor(bundlePath: string): string {
  return `${bundlePath}.sig.json`
}

/** What a signature vouches for. */
export interface BundleFacts {
  /** The bundle's file name (informational: a renamed bundle still verifies). */
  name: string
  /** sha256 hex of the whole bundle (for a bundle in parts: of the parts end to end). */
  sha256: string
  size: number
  /** sha256 hex of the bundle's kubeferry/bundle.json. */
  metadataSha256: string
}

/** Whether two statements are about the same bundle (its bytes and its bundle.json; the file name may differ). */
export function sameBundle(a: BundleFacts, b: BundleFacts): boolean {
  return a.sha256 === b.sha256 && a.size === b.size && a.metadataSha256 === b.metadataSha256
}

export interface Signature {
  keyid: string
  sig: string
}

export interface Envelope {
  payloadType: string
  /** base64 of the statement's bytes. */
  payload: string
  signatures: Signature[]
}

/** The statement's bytes for `facts` (compact, fixed member order: the same bundle always gives the same bytes). */
export function statementBytes(facts: BundleFacts): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: STATEMENT_TYPE,
      subject: [{name: facts.name, digest: {sha256: facts.sha256}}],
      predicateType: PREDICATE_TYPE,
      predicate: {size: facts.size, bundleJson: {path: 'kubeferry/bundle.json', sha256: facts.metadataSha256}},
    }),
  )
}

/** DSSE's pre-authentication encoding of `payload` (the bytes each signature is over). */
export function pae(payload: Buffer, payloadType = PAYLOAD_TYPE): Buffer {
  const type = Buffer.from(payloadType)
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload])
}

/** The envelope as written: one member a line, one signature a line (install.sh and the README read it so). */
export function formatEnvelope(envelope: Envelope): string {
  const sigs = envelope.signatures.map((s) => `    ${JSON.stringify({keyid: s.keyid, sig: s.sig})}`)
  return `{\n  "payloadType": ${JSON.stringify(envelope.payloadType)},\n  "payload": ${JSON.stringify(envelope.payload)},\n  "signatures": [\n${sigs.join(',\n')}\n  ]\n}\n`
}

const HEX64 = /^[0-9a-f]{64}$/
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/

/** Parse an envelope file's text; anything that is not a DSSE envelope of ours is refused, naming the file. */
export function parseEnvelope(text: string, file: string): Envelope {
  const bad = (why: string): KubeferryError =>
    new KubeferryError('BUNDLE_INVALID', `signature file ${file} is not a kubeferry bundle signature: ${why}`, {hint: `copy ${file} again from where the bundle was signed, or sign the bundle again (kubeferry sign BUNDLE --key KEY)`})
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw bad('not JSON')
  }
  const e = value as Partial<Envelope>
  if (typeof e !== 'object' || e === null || Array.isArray(e)) throw bad('not a JSON object')
  if (e.payloadType !== PAYLOAD_TYPE) throw bad(`payloadType is ${JSON.stringify(e.payloadType)}, not ${PAYLOAD_TYPE}`)
  if (typeof e.payload !== 'string' || !BASE64.test(e.payload)) throw bad('no base64 payload')
  if (!Array.isArray(e.signatures)) throw bad('no signatures array')
  const signatures = e.signatures.map((s: Partial<Signature>, i) => {
    if (typeof s?.sig !== 'string' || !BASE64.test(s.sig)) throw bad(`signature ${i + 1} has no base64 sig`)
    return {keyid: typeof s.keyid === 'string' && HEX64.test(s.keyid) ? s.keyid : '', sig: s.sig}
  })
  return {payloadType: e.payloadType, payload: e.payload, signatures}
}

/** base64, standard or URL-safe (DSSE verifiers must accept both). */
export function fromBase64(text: string): Buffer {
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
}

/** The facts a statement names, or an error naming the signature file. */
export function parseStatement(payload: Buffer, file: string): BundleFacts {
  const bad = (why: string): KubeferryError =>
    new KubeferryError('BUNDLE_INVALID', `signature file ${file}: the signed statement ${why}`, {hint: 'the bundle was signed by a tool kubeferry does not know; sign it again with kubeferry sign BUNDLE --key KEY'})
  let s: {_type?: unknown; subject?: Array<{name?: unknown; digest?: {sha256?: unknown}}>; predicateType?: unknown; predicate?: {size?: unknown; bundleJson?: {sha256?: unknown}}}
  try {
    s = JSON.parse(payload.toString('utf8')) as typeof s
  } catch {
    throw bad('is not JSON')
  }
  if (s._type !== STATEMENT_TYPE) throw bad(`is not an in-toto Statement v1 (_type ${JSON.stringify(s._type)})`)
  if (s.predicateType !== PREDICATE_TYPE) throw bad(`has predicateType ${JSON.stringify(s.predicateType)}, not ${PREDICATE_TYPE}`)
  const subject = Array.isArray(s.subject) && s.subject.length === 1 ? s.subject[0] : undefined
  const sha256 = subject?.digest?.sha256
  const size = s.predicate?.size
  const metadataSha256 = s.predicate?.bundleJson?.sha256
  if (typeof sha256 !== 'string' || !HEX64.test(sha256)) throw bad('names no sha256 of the bundle')
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad('names no bundle size')
  if (typeof metadataSha256 !== 'string' || !HEX64.test(metadataSha256)) throw bad('names no sha256 of bundle.json')
  return {name: typeof subject?.name === 'string' ? subject.name : '', sha256, size, metadataSha256}
}
