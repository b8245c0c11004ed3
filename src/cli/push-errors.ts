/**
 * Hints that fit `push`. The registry client's hints are written for pulls ("without internet access use --mirror"),
 * and the push engine ends every failure with "rerun the same command", which cannot help when the bundle itself is
 * corrupt. push writes to exactly the registry it is given (it takes no --mirror), and a corrupt bundle has to be
 * copied again or rebuilt.
 */
import {KubeferryError, isKubeferryError} from '../oci/errors.js'
import {corruptBundleHint} from './bundle-hints.js'
import {hostWithoutPort, isLoopback} from '../registry/tls.js'

const BUNDLE_CODES = new Set(['DIGEST_MISMATCH', 'SIZE_MISMATCH', 'BUNDLE_INVALID'])

export function forPush(error: unknown, bundle: string | undefined, registry: string | undefined): unknown {
  if (!isKubeferryError(error)) return error
  const rewrite = (hint: string): KubeferryError => new KubeferryError(error.code, error.message, {hint, cause: error.cause, exitCode: error.exitCode})
  if (bundle && BUNDLE_CODES.has(error.code) && error.message.includes(bundle)) return rewrite(corruptBundleHint(bundle))
  if (registry && error.hint?.includes('--mirror')) {
    if (error.code === 'NETWORK') {
      const plain = isLoopback(hostWithoutPort(registry)) ? '' : `; a registry without TLS needs --insecure-registry ${registry}`
      return rewrite(`check that ${registry} is the registry's host[:port], that it runs and that this machine reaches it (curl -v https://${registry}/v2/)${plain}`)
    }
    return rewrite(error.hint.replace(/,? or use --mirror/, '').replace(/; without internet access use --mirror \S+/, ''))
  }
  return error
}
