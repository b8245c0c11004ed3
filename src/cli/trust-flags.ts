/**
 * The signature flags of every command that consumes a bundle (verify, inspect, load, push, serve) and of the ones
 * that sign (sign, create --sign-key), in one place. Passphrases come from stdin or a named environment variable,
 * never from a flag's value (it would sit in the shell history and in `ps`).
 */
import * as Flags from '@oclif/core/flags'
import {openBundleBytes} from '../bundle/parted-bytes.js'
import {KubeferryError} from '../oci/errors.js'
import {readPrivateKey, type PrivateKey} from '../trust/keys.js'
import {resolvePolicy, type TrustPolicy} from '../trust/policy.js'
import {verifyTrust, type TrustCheckOptions, type TrustReport} from '../trust/verify.js'

export const trustFlags = {
  key: Flags.string({description: "A signer's public key (PEM; repeatable): the bundle's NAME.tar.sig.json must carry a valid signature by it.", multiple: true, helpValue: 'FILE', helpGroup: 'SIGNATURES'}),
  'require-signatures': Flags.integer({description: 'How many distinct trusted keys must have signed (default 1 when any key is given or trusted).', min: 1, helpValue: 'N', helpGroup: 'SIGNATURES'}),
  'trusted-keys': Flags.string({description: 'Node policy: a directory of trusted public keys (*.pem, *.pub); when it holds keys every bundle must be signed by them. Default $KUBEFERRY_TRUSTED_KEYS or /etc/kubeferry/trusted-keys.', helpValue: 'DIR', helpGroup: 'SIGNATURES'}),
}

export interface TrustFlagValues {
  key?: string[]
  'require-signatures'?: number
  'trusted-keys'?: string
}

/** The policy these flags (and the node's directory) ask for; undefined: no key anywhere, no check. */
export async function policyFromFlags(flags: TrustFlagValues): Promise<TrustPolicy | undefined> {
  return resolvePolicy({keyFiles: flags.key, required: flags['require-signatures'], trustedKeysDir: flags['trusted-keys']})
}

/** Refuse the bundle unless its signatures satisfy the policy; undefined when there is no policy. */
export async function checkBundleTrust(bundle: string, flags: TrustFlagValues, options: TrustCheckOptions = {}): Promise<TrustReport | undefined> {
  // A bundle that cannot be opened is left to the command, which refuses it in its own words and exit code (nothing
  // can be imported, pushed or served from it): it is named first, before any key is read.
  if (!(await openBundleBytes(bundle).then(() => true, () => false))) return undefined
  const policy = await policyFromFlags(flags)
  return policy ? verifyTrust(bundle, policy, options) : undefined
}

/** One line for a human: who signed. */
export function signedByLine(report: TrustReport): string {
  return `signed by ${report.signedBy.map((s) => `${s.keyFile} (${s.algorithm}, keyid ${s.keyid.slice(0, 16)}…)`).join(', ')}; ${report.signedBy.length} of ${report.required} required`
}

export const passphraseFlags = {
  'passphrase-stdin': Flags.boolean({description: "Read the signing key's passphrase from standard input (one line).", default: false, helpGroup: 'SIGNING'}),
  'passphrase-env': Flags.string({description: "Take the signing key's passphrase from the environment variable NAME (the name, not the passphrase).", helpValue: 'NAME', helpGroup: 'SIGNING'}),
}

export interface PassphraseFlagValues {
  'passphrase-stdin'?: boolean
  'passphrase-env'?: string
  'password-stdin'?: boolean
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

/** The signing key of `file`, decrypted with the passphrase the flags say where to find. */
export async function signingKeyFromFlags(file: string, flags: PassphraseFlagValues): Promise<PrivateKey> {
  const usage = (message: string, hint: string): KubeferryError => new KubeferryError('USAGE', message, {hint, exitCode: 2})
  if (flags['passphrase-stdin'] && flags['passphrase-env']) throw usage('--passphrase-stdin and --passphrase-env both give the passphrase', 'use one of them')
  if (flags['passphrase-stdin'] && flags['password-stdin']) throw usage('--passphrase-stdin and --password-stdin both read standard input', 'give the key passphrase with --passphrase-env NAME instead')
  let passphrase: string | undefined
  if (flags['passphrase-stdin']) passphrase = await readStdinLine()
  else if (flags['passphrase-env']) {
    const name = flags['passphrase-env']
    passphrase = process.env[name]
    if (passphrase === undefined) throw usage(`--passphrase-env ${name}: the environment variable ${name} is not set`, `export ${name} (e.g. read -rs ${name}; export ${name}) and run again`)
  }
  return readPrivateKey(file, passphrase)
}
