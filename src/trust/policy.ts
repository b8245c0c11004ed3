/**
 * Which keys a consumer trusts and how many of their signatures it needs. Sources: `--key FILE` (repeatable) and the
 * node policy directory (default /etc/kubeferry/trusted-keys; KUBEFERRY_TRUSTED_KEYS or --trusted-keys DIR to point
 * elsewhere). When the directory holds keys it is the node's word: a signature is required even with no --key, and a
 * --key outside it is refused (nobody can be talked into trusting another key with a flag). --require-signatures N
 * (default 1 when there is any key) counts distinct trusted keys, as DSSE's (t, n) rule does.
 */
import {KubeferryError} from '../oci/errors.js'
import {keyFilesIn, readPublicKey, type PublicKey} from './keys.js'

export const DEFAULT_TRUSTED_KEYS_DIR = '/etc/kubeferry/trusted-keys'
export const TRUSTED_KEYS_ENV = 'KUBEFERRY_TRUSTED_KEYS'

export interface TrustOptions {
  /** --key files. */
  keyFiles?: string[]
  /** --require-signatures. */
  required?: number
  /** --trusted-keys; else KUBEFERRY_TRUSTED_KEYS; else the default directory. */
  trustedKeysDir?: string
}

export interface TrustPolicy {
  keys: PublicKey[]
  required: number
  /** Where the keys come from, for messages: `--key a.pub` or `the node policy /etc/kubeferry/trusted-keys`. */
  origin: string
  /** The policy directory when it holds keys. */
  policyDir?: string
}

const usage = (message: string, hint: string): KubeferryError => new KubeferryError('USAGE', message, {hint, exitCode: 2})

/** The policy directory in force: the flag's, the environment's, or the default. */
export function trustedKeysDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag || env[TRUSTED_KEYS_ENV] || DEFAULT_TRUSTED_KEYS_DIR
}

const unique = (keys: PublicKey[]): PublicKey[] => [...new Map(keys.map((k) => [k.keyid, k])).values()]

/** The policy for these options, or undefined when no key is given or trusted on this node (no check). */
export async function resolvePolicy(options: TrustOptions): Promise<TrustPolicy | undefined> {
  const dir = trustedKeysDir(options.trustedKeysDir)
  const dirFiles = (await keyFilesIn(dir)) ?? []
  const dirKeys = unique(await Promise.all(dirFiles.map(readPublicKey)))
  const given = unique(await Promise.all((options.keyFiles ?? []).map(readPublicKey)))
  if (dirKeys.length > 0) {
    for (const key of given) {
      if (!dirKeys.some((k) => k.keyid === key.keyid)) {
        throw usage(`key ${key.file} (keyid ${key.keyid.slice(0, 16)}…) is not among this node's trusted keys in ${dir}; nothing was done`, `leave --key out to check against the node's keys, or have the node's administrator add ${key.file} to ${dir}`)
      }
    }
  }
  const keys = given.length > 0 ? given : dirKeys
  const origin = given.length > 0 ? `--key ${given.map((k) => k.file).join(', ')}` : `the node policy ${dir}`
  if (options.required !== undefined) {
    if (!Number.isSafeInteger(options.required) || options.required < 1) throw usage(`--require-signatures ${options.required}: give a whole number of at least 1`, 'e.g. --require-signatures 2 with two --key files')
    if (keys.length === 0) throw usage(`--require-signatures ${options.required} needs the signers' keys: no --key given and no keys in ${dir}`, 'add --key SIGNER.pub once per signer')
    if (options.required > keys.length) {
      throw usage(`--require-signatures ${options.required} can never hold: only ${keys.length} distinct trusted key${keys.length === 1 ? '' : 's'} (${origin})`, `give one --key per signer (${options.required} in all), or require fewer signatures`)
    }
  }
  if (keys.length === 0) return undefined
  return {keys, required: options.required ?? 1, origin, ...(dirKeys.length > 0 ? {policyDir: dir} : {})}
}
