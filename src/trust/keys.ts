/**
 * Keys for bundle signatures: ECDSA P-256 and Ed25519, PEM as `openssl genpkey` writes them (PKCS#8 private keys,
 * possibly encrypted; SubjectPublicKeyInfo public keys). A key is named by its file and its keyid (sha256 hex of the
 * public key's DER SPKI); no message ever carries a key's bytes or a passphrase, and node's own key errors (which
 * could quote neither, but say little) are replaced by one line naming the file.
 */
import {createHash, createPrivateKey, createPublicKey, type KeyObject} from 'node:crypto'
import {readdir, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {KubeferryError} from '../oci/errors.js'

export type KeyKind = 'ecdsa-p256' | 'ed25519'

export interface PublicKey {
  file: string
  keyid: string
  kind: KeyKind
  key: KeyObject
}

export interface PrivateKey {
  file: string
  keyid: string
  kind: KeyKind
  key: KeyObject
}

/** Largest key file read: a PEM key is well under a kilobyte. */
const MAX_KEY_BYTES = 64 * 1024
const GENERATE = 'openssl genpkey -algorithm ed25519 -out signer.key (or -algorithm EC -pkeyopt ec_paramgen_curve:P-256), then openssl pkey -in signer.key -pubout -out signer.pub'

function kindOf(key: KeyObject, file: string): KeyKind {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256'
  const what = key.asymmetricKeyType === 'ec' ? `an EC key on curve ${key.asymmetricKeyDetails?.namedCurve ?? 'unknown'}` : `a ${key.asymmetricKeyType ?? 'unknown'} key`
  throw new KubeferryError('INVALID_ARGUMENT', `key ${file} is ${what}; bundle signatures use ECDSA P-256 or Ed25519`, {hint: `make one with: ${GENERATE}`})
}

/** sha256 hex of the public key's DER SubjectPublicKeyInfo: the `keyid` of its signatures. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({type: 'spki', format: 'der'})).digest('hex')
}

export async function readKeyFile(file: string): Promise<Buffer> {
  try {
    const info = await stat(file)
    if (!info.isFile()) throw Object.assign(new Error('not a regular file'), {code: info.isDirectory() ? 'EISDIR' : 'ENOTREG'})
    if (info.size > MAX_KEY_BYTES) throw new KubeferryError('INVALID_ARGUMENT', `key ${file} is ${info.size} bytes, more than the ${MAX_KEY_BYTES} a key file may be`, {hint: 'give the PEM key file itself (-----BEGIN … KEY-----, a few hundred bytes)'})
    return await readFile(file)
  } catch (error) {
    if (error instanceof KubeferryError) throw error
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new KubeferryError('IO', `cannot read key ${file}: ${code}`, {hint: 'check the path and permissions'})
  }
}

/** A public key file (a private key given where a public one is wanted is refused: it should not travel inside). */
export async function readPublicKey(file: string): Promise<PublicKey> {
  const pem = await readKeyFile(file)
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1'))) {
    throw new KubeferryError('INVALID_ARGUMENT', `key ${file} is a private key; verification takes the signer's public key`, {hint: `export it where the private key is kept: openssl pkey -in ${file} -pubout -out signer.pub, and bring only signer.pub inside`})
  }
  let key: KeyObject
  try {
    key = createPublicKey({key: pem, format: 'pem'})
  } catch {
    throw new KubeferryError('INVALID_ARGUMENT', `key ${file} is not a PEM public key`, {hint: `give the signer's public key (-----BEGIN PUBLIC KEY-----), made with: ${GENERATE}`})
  }
  return {file, keyid: keyIdOf(key), kind: kindOf(key, file), key}
}

/** A private key file, decrypted with `passphrase` when it is encrypted. */
export async function readPrivateKey(file: string, passphrase?: string): Promise<PrivateKey> {
  const pem = await readKeyFile(file)
  const text = pem.toString('latin1')
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text) || /Proc-Type: 4,ENCRYPTED/.test(text)
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new KubeferryError('INVALID_ARGUMENT', `key ${file} is not a PEM private key`, {hint: `give the signer's private key (PKCS#8 PEM), made with: ${GENERATE}`})
  }
  if (encrypted && passphrase === undefined) {
    throw new KubeferryError('INVALID_ARGUMENT', `key ${file} is encrypted and no passphrase was given`, {hint: 'give its passphrase on stdin with --passphrase-stdin, or name an environment variable holding it with --passphrase-env NAME'})
  }
  let key: KeyObject
  try {
    key = createPrivateKey({key: pem, format: 'pem', ...(encrypted ? {passphrase} : {})})
  } catch {
    throw encrypted
      ? new KubeferryError('INVALID_ARGUMENT', `cannot decrypt key ${file}: wrong passphrase (or a damaged key file)`, {hint: 'give the passphrase again (--passphrase-stdin, or --passphrase-env NAME); nothing was signed'})
      : new KubeferryError('INVALID_ARGUMENT', `key ${file} is not a readable PEM private key`, {hint: `make one with: ${GENERATE}`})
  }
  const kind = kindOf(key, file)
  return {file, keyid: keyIdOf(createPublicKey(key)), kind, key}
}

/** Key files a policy directory holds: its `*.pem` and `*.pub` files (undefined when the directory is not there). */
export async function keyFilesIn(dir: string): Promise<string[] | undefined> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    // A policy that cannot be read must not read as "no policy": that would skip the check it asks for.
    throw new KubeferryError('IO', `cannot read the trusted-keys directory ${dir}: ${code ?? 'unreadable'}`, {hint: 'check its permissions (kubeferry refuses to go on without reading the node policy)'})
  }
  return names.filter((n) => /\.(pem|pub)$/.test(n)).sort().map((n) => join(dir, n))
}
