/** Signing keys for the trust tests, made by `openssl genpkey` as an operator would (never by node:crypto). */
import {execFile} from 'node:child_process'
import {join} from 'node:path'
import {promisify} from 'node:util'

const execFileP = promisify(execFile)

export type Kind = 'ed25519' | 'p256'

export interface TestKey {
  kind: Kind
  /** The private key (PEM PKCS#8; encrypted when made with a passphrase). */
  key: string
  /** Its public key (PEM SPKI). */
  pub: string
}

/** `openssl genpkey` a key of `kind` into `dir/NAME.key` and `dir/NAME.pub`; with `passphrase`, encrypted (-aes256). */
export async function genKey(dir: string, name: string, kind: Kind, passphrase?: string): Promise<TestKey> {
  const key = join(dir, `${name}.key`)
  const pub = join(dir, `${name}.pub`)
  const algorithm = kind === 'ed25519' ? ['-algorithm', 'ed25519'] : ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
  const encrypt = passphrase === undefined ? [] : ['-aes256', '-pass', `pass:${passphrase}`]
  await execFileP('openssl', ['genpkey', ...algorithm, ...encrypt, '-out', key])
  await execFileP('openssl', ['pkey', '-in', key, ...(passphrase === undefined ? [] : ['-passin', `pass:${passphrase}`]), '-pubout', '-out', pub])
  return {kind, key, pub}
}

/** keyid of a public key as openssl computes it: sha256 of its DER SubjectPublicKeyInfo. */
export async function opensslKeyId(pub: string): Promise<string> {
  const {stdout} = await execFileP('sh', ['-c', 'openssl pkey -pubin -in "$1" -outform DER | openssl dgst -sha256 -r', 'sh', pub])
  return stdout.split(' ')[0]
}
