/**
 * Signing a bundle: one more signature in NAME.tar.sig.json, over the same statement as the signatures already there
 * (a second person signs on another machine later). The bundle itself is never written to; the signature file is
 * replaced atomically (write beside, rename).
 */
import {sign as cryptoSign} from 'node:crypto'
import {readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import {KubeferryError} from '../oci/errors.js'
import {formatEnvelope, fromBase64, MAX_ENVELOPE_BYTES, pae, parseEnvelope, parseStatement, PAYLOAD_TYPE, sameBundle, signatureFileFor, statementBytes, type BundleFacts, type Envelope} from './envelope.js'
import {bundleFacts, wholeBundlePath} from './facts.js'
import type {PrivateKey} from './keys.js'

export interface SignResult {
  bundle: string
  signatureFile: string
  keyid: string
  keyFile: string
  algorithm: string
  /** Signatures in the file now (this one included). */
  signatures: number
  /** true: this key had signed already; nothing was added. */
  alreadySigned: boolean
  statement: BundleFacts
}

/** The signature bytes over `payload`'s PAE (ECDSA: DER, as openssl and sigstore read it). */
export function signPayload(key: PrivateKey, payload: Buffer): Buffer {
  return cryptoSign(key.kind === 'ed25519' ? null : 'sha256', pae(payload), key.key)
}

/** The envelope file's text and parsed content, if there is one. */
export async function readEnvelopeFile(file: string): Promise<Envelope | undefined> {
  const info = await stat(file).catch(() => undefined)
  if (!info) return undefined
  if (!info.isFile() || info.size > MAX_ENVELOPE_BYTES) {
    throw new KubeferryError('BUNDLE_INVALID', `signature file ${file} is not a regular file of at most ${MAX_ENVELOPE_BYTES} bytes`, {hint: `move ${file} out of the way (if it should hold the bundle's signatures, copy it again from where the bundle was signed)`})
  }
  return parseEnvelope(await readFile(file, 'utf8'), file)
}

/** Sign the bundle at `path` (a part's path names the whole) with `key`; `known`: its sha256 and size, when known. */
export async function signBundle(path: string, key: PrivateKey, known?: {sha256: string; size: number}): Promise<SignResult> {
  const bundle = wholeBundlePath(path)
  const file = signatureFileFor(bundle)
  const facts = await bundleFacts(path, known)
  const payload = statementBytes(facts)
  const existing = await readEnvelopeFile(file)
  let envelope: Envelope = {payloadType: PAYLOAD_TYPE, payload: payload.toString('base64'), signatures: []}
  if (existing) {
    const signed = parseStatement(fromBase64(existing.payload), file)
    if (!sameBundle(signed, facts)) {
      throw new KubeferryError('BUNDLE_INVALID', `${file} signs another bundle (sha256 ${signed.sha256}, ${signed.size} bytes) than ${bundle} (sha256 ${facts.sha256}, ${facts.size} bytes); nothing was signed`, {
        hint: `check that you have the bundle the first signer signed (compare ${bundle}.sha256 with theirs); if ${file} is stale, move it away and sign again`,
      })
    }
    envelope = existing
  }
  const already = envelope.signatures.some((s) => s.keyid === key.keyid)
  if (!already) {
    const sig = signPayload(key, fromBase64(envelope.payload))
    envelope = {...envelope, signatures: [...envelope.signatures, {keyid: key.keyid, sig: sig.toString('base64')}]}
    const temp = `${file}.${process.pid}.tmp`
    try {
      await writeFile(temp, formatEnvelope(envelope), {mode: 0o644})
      await rename(temp, file)
    } catch (error) {
      await rm(temp, {force: true})
      throw new KubeferryError('IO', `cannot write signature file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {hint: 'check that its directory is writable; the bundle is unchanged'})
    }
  }
  return {
    bundle,
    signatureFile: file,
    keyid: key.keyid,
    keyFile: key.file,
    algorithm: key.kind,
    signatures: envelope.signatures.length,
    alreadySigned: already,
    statement: facts,
  }
}

/**
 * create wrote a new bundle at `path`: a signature file beside it that signs another bundle (the one this run
 * replaced, or one it cannot parse) is moved aside to NAME.tar.sig.json.old (.old.1, … when taken), so that neither
 * verify nor a later sign meets a file that contradicts the bundle, and nothing is deleted. A file that signs this
 * very bundle (a rebuild byte for byte) stays, as does anything that is not a regular file (sign names it). Returns
 * the move, if any.
 */
export async function setAsideStaleSignature(path: string, known: {sha256: string; size: number}): Promise<{from: string; to: string} | undefined> {
  const file = signatureFileFor(wholeBundlePath(path))
  const info = await stat(file).catch(() => undefined)
  if (!info?.isFile()) return undefined
  try {
    const signed = parseStatement(fromBase64((await readEnvelopeFile(file))!.payload), file)
    const facts = await bundleFacts(path, known)
    if (sameBundle(signed, facts)) return undefined
  } catch {
    // not a signature file kubeferry can read: it cannot sign the new bundle either
  }
  let to = `${file}.old`
  for (let n = 1; await stat(to).then(() => true, () => false); n++) to = `${file}.old.${n}`
  await rename(file, to)
  return {from: file, to}
}
