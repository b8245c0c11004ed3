/**
 * Checking a bundle's signatures before anything else uses it: the envelope beside it must carry valid signatures by
 * at least `required` distinct trusted keys, over a statement whose sha256, size and bundle.json digest are this
 * bundle's. Cheap checks first (the file is there, the signatures verify), then the pass over the bundle's bytes.
 */
import {verify as cryptoVerify} from 'node:crypto'
import {basename} from 'node:path'
import {KubeferryError} from '../oci/errors.js'
import {fromBase64, pae, parseStatement, signatureFileFor, type BundleFacts} from './envelope.js'
import {bundleFacts, wholeBundlePath} from './facts.js'
import type {PublicKey} from './keys.js'
import type {TrustPolicy} from './policy.js'
import {readEnvelopeFile} from './sign.js'

export interface TrustReport {
  bundle: string
  signatureFile: string
  required: number
  /** Trusted keys whose signature verified. */
  signedBy: Array<{keyid: string; keyFile: string; algorithm: string}>
  /** Signatures that did not count, and why. */
  ignored: Array<{keyid: string; reason: string}>
  statement: BundleFacts
}

export interface TrustCheckOptions {
  /** What the refusal stops, for messages: 'imported', 'pushed', 'served', … */
  nothing?: string
  /** Exit code of a refusal (load: install.sh's 4). */
  exitCode?: number
  /** The bundle's sha256 and size when the caller already has them (no second pass over the bytes). */
  known?: {sha256: string; size: number}
}

/** Whether `sig` is `key`'s signature over `payload`'s PAE. */
export function verifyPayload(key: PublicKey, payload: Buffer, sig: Buffer): boolean {
  try {
    return cryptoVerify(key.kind === 'ed25519' ? null : 'sha256', pae(payload), key.key, sig)
  } catch {
    return false
  }
}

const short = (keyid: string): string => (keyid ? `${keyid.slice(0, 16)}…` : '(no keyid)')

/** Check the bundle at `path` against `policy`; throws a refusal naming the bundle, the keys and what to do. */
export async function verifyTrust(path: string, policy: TrustPolicy, options: TrustCheckOptions = {}): Promise<TrustReport> {
  const bundle = wholeBundlePath(path)
  const file = signatureFileFor(bundle)
  const nothing = `nothing was ${options.nothing ?? 'used'}`
  const refuse = (message: string, hint: string): KubeferryError => new KubeferryError('BUNDLE_INVALID', message, {hint, exitCode: options.exitCode ?? 1})
  const need = `${policy.required} signature${policy.required === 1 ? '' : 's'} from ${policy.origin}`
  const envelope = await readEnvelopeFile(file).catch((error: unknown) => {
    throw error instanceof KubeferryError ? refuse(`${error.message}; ${nothing}`, error.hint ?? '') : error
  })
  if (!envelope) {
    throw refuse(`bundle ${bundle} is not signed (no ${basename(file)} beside it) and ${need} ${policy.required === 1 ? 'is' : 'are'} required; ${nothing}`, `get ${basename(file)} from whoever built the bundle and put it beside the bundle (they make it with: kubeferry sign ${basename(bundle)} --key THEIR_KEY); do not bypass the check`)
  }
  const payload = fromBase64(envelope.payload)
  const signedBy: TrustReport['signedBy'] = []
  const ignored: TrustReport['ignored'] = []
  for (const signature of envelope.signatures) {
    const candidates = signature.keyid ? policy.keys.filter((k) => k.keyid === signature.keyid) : policy.keys
    const key = candidates.find((k) => verifyPayload(k, payload, fromBase64(signature.sig)))
    if (key && !signedBy.some((s) => s.keyid === key.keyid)) signedBy.push({keyid: key.keyid, keyFile: key.file, algorithm: key.kind})
    else if (!key) ignored.push({keyid: signature.keyid, reason: candidates.length === 0 ? 'not a trusted key' : `does not verify with ${candidates.map((k) => k.file).join(', ')} (the signature or the statement was altered)`})
  }
  if (signedBy.length < policy.required) {
    const found = [...signedBy.map((s) => `keyid ${short(s.keyid)} (${s.keyFile}): valid`), ...ignored.map((s) => `keyid ${short(s.keyid)}: ${s.reason}`)]
    throw refuse(`bundle ${bundle} has ${signedBy.length} valid signature${signedBy.length === 1 ? '' : 's'} from trusted keys where ${need} ${policy.required === 1 ? 'is' : 'are'} required (${basename(file)}: ${found.join('; ') || 'no signatures'}); ${nothing}`, 'if a signer is missing, have them add theirs (kubeferry sign BUNDLE --key THEIR_KEY) and copy the .sig.json again; a signature by an unknown key means this is not the bundle you expect: do not use it')
  }
  const signed = (() => {
    try {
      return parseStatement(payload, file)
    } catch (error) {
      throw error instanceof KubeferryError ? refuse(`${error.message}; ${nothing}`, error.hint ?? '') : error
    }
  })()
  const actual = await bundleFacts(path, options.known).catch((error: unknown) => {
    throw error instanceof KubeferryError ? refuse(`${error.message}; ${nothing}`, error.hint ?? '') : error
  })
  const by = signedBy.map((s) => s.keyFile).join(', ')
  const differs = (what: string, got: string | number, want: string | number): KubeferryError =>
    refuse(`bundle ${bundle} is not the bundle that was signed: its ${what} is ${got}, the statement signed by ${by} names ${want}; it was changed or swapped after signing, ${nothing}`, "do not use it: get the bundle again from its signer and compare its sha256 with theirs (sha256sum, or the statement's subject digest)")
  if (actual.size !== signed.size) throw differs('size', actual.size, signed.size)
  if (actual.sha256 !== signed.sha256) throw differs('sha256', actual.sha256, signed.sha256)
  if (actual.metadataSha256 !== signed.metadataSha256) throw differs('bundle.json sha256', actual.metadataSha256, signed.metadataSha256)
  return {bundle, signatureFile: file, required: policy.required, signedBy, ignored, statement: signed}
}

/** What the signature file beside a bundle holds, unchecked (inspect without a key): its path and keyids. */
export async function signaturesBeside(path: string): Promise<{signatureFile: string; keyids: string[]} | undefined> {
  const file = signatureFileFor(wholeBundlePath(path))
  const envelope = await readEnvelopeFile(file).catch(() => undefined)
  return envelope && {signatureFile: file, keyids: envelope.signatures.map((s) => s.keyid)}
}
