/**
 * Public keys for the publishers' cosign signatures (`cosign.pub` as `cosign generate-key-pair` writes it, or any PEM
 * SubjectPublicKeyInfo): ECDSA (cosign's default P-256), RSA and Ed25519. Named by file (or by the policy entry that
 * holds an inline PEM) and keyid (sha256 hex of the DER SubjectPublicKeyInfo); no key bytes in any message.
 */
import {createPublicKey, type KeyObject} from 'node:crypto'
import {KubeferryError} from '../oci/errors.js'
import {keyIdOf, readKeyFile} from './keys.js'

export interface CosignKey {
  /** The file, or `policy FILE, entry N, key M` for an inline PEM. */
  name: string
  keyid: string
  kind: 'ecdsa' | 'rsa' | 'ed25519'
  key: KeyObject
}

const KINDS: Record<string, CosignKey['kind']> = {ec: 'ecdsa', rsa: 'rsa', ed25519: 'ed25519'}

/** A cosign public key from PEM text; `name` says where it came from. */
export function cosignKeyFromPem(pem: Buffer | string, name: string): CosignKey {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1')
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new KubeferryError('INVALID_ARGUMENT', `cosign key ${name} is a private key; verification takes the publisher's public key (cosign.pub)`, {hint: 'give the public key the publisher distributes; a private key should never travel inside'})
  }
  let key: KeyObject
  try {
    key = createPublicKey({key: text, format: 'pem'})
  } catch {
    throw new KubeferryError('INVALID_ARGUMENT', `cosign key ${name} is not a PEM public key`, {hint: 'give the publisher\'s public key (-----BEGIN PUBLIC KEY-----, e.g. cosign.pub)'})
  }
  const kind = KINDS[key.asymmetricKeyType ?? '']
  if (!kind) throw new KubeferryError('INVALID_ARGUMENT', `cosign key ${name} is a ${key.asymmetricKeyType ?? 'unknown'} key; cosign signatures are ECDSA, RSA or Ed25519`, {hint: 'give the publisher\'s cosign public key'})
  return {name, keyid: keyIdOf(key), kind, key}
}

/** A cosign public key file (--cosign-key, or a path in an image policy). */
export async function readCosignKey(file: string): Promise<CosignKey> {
  return cosignKeyFromPem(await readKeyFile(file), file)
}
