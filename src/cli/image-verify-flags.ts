/**
 * The flags of the publishers' image signature checks (issue 19 d4) for verify --images, load/push --verify-images
 * and create --verify-signatures, and the one call each command makes.
 */
import * as Flags from '@oclif/core/flags'
import {openBundleBytes} from '../bundle/parted-bytes.js'
import {KubeferryError} from '../oci/errors.js'
import {usageError} from './usage.js'
import type {ImagePolicy} from '../trust/image-policy.js'
import type {ImagesReport} from '../trust/verify-images.js'

export const imagePolicyFlags = {
  'cosign-key': Flags.string({description: "A publisher's cosign public key (PEM, e.g. cosign.pub; repeatable): images no --image-policy entry names must carry a valid cosign signature by one of them.", multiple: true, helpValue: 'FILE', helpGroup: 'IMAGE SIGNATURES'}),
  'image-policy': Flags.string({description: 'JSON file mapping registry/repository globs to the cosign keys (files or inline PEM) or keyless identities allowed: {"images": [{"match": "registry.corp/apps/**", "keys": ["cosign.pub"]}, {"match": "ghcr.io/org/**", "keyless": [{"issuer": "https://token.actions.githubusercontent.com", "subject": "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main"}]}]}. Built in: registry.k8s.io/** keyless (krel-trust@k8s-releng-prod.iam.gserviceaccount.com, issuer https://accounts.google.com).', helpValue: 'FILE', helpGroup: 'IMAGE SIGNATURES'}),
  'trusted-root': Flags.string({description: "Sigstore trusted_root.json (fetched on the connected side, e.g. `cosign trusted-root create`) that keyless signatures are checked against, in place of the one the bundle carries (create --trusted-root). Without any, keyless signatures are reported as not checked.", helpValue: 'FILE', helpGroup: 'IMAGE SIGNATURES'}),
}

export interface ImagePolicyFlagValues {
  'cosign-key'?: string[]
  'image-policy'?: string
  'trusted-root'?: string
}

/** The policy these flags give (the built-in entries always apply). */
export async function imagePolicyFromFlags(flags: ImagePolicyFlagValues): Promise<ImagePolicy> {
  const {resolveImagePolicy} = await import('../trust/image-policy.js')
  return resolveImagePolicy({policyFile: flags['image-policy'], cosignKeys: flags['cosign-key'], trustedRoot: flags['trusted-root']})
}

/**
 * Whether the policy flags were given without the switch that uses them (a usage error: they would do nothing).
 * `--trusted-root` counts only where it does nothing else (not at create, which carries it).
 */
export function policyFlagsWithout(flags: ImagePolicyFlagValues, enabled: boolean, trustedRootCounts = false): boolean {
  return !enabled && (Boolean(flags['cosign-key']?.length) || flags['image-policy'] !== undefined || (trustedRootCounts && flags['trusted-root'] !== undefined))
}

/**
 * The policy a bundle's consumer checks its images with (undefined: no check). A bundle that cannot be opened is
 * named first, by the command, before any flag of these is judged or key read (as the bundle signature flags do).
 */
export async function bundleImagePolicy(bundle: string, flags: ImagePolicyFlagValues, enabled: boolean, switchName: string): Promise<ImagePolicy | undefined> {
  if (!(await openBundleBytes(bundle).then(() => true, () => false))) return undefined
  if (policyFlagsWithout(flags, enabled)) throw usageError(`--cosign-key and --image-policy are for ${switchName}`, `add ${switchName} to check the images' signatures`)
  if (policyFlagsWithout(flags, enabled, true)) throw usageError(`--trusted-root is for ${switchName} (it checks keyless image signatures)`, `add ${switchName} to check the images' signatures`)
  return enabled ? imagePolicyFromFlags(flags) : undefined
}

/**
 * Check the bundle's images: the report, and the refusal (with `exitCode`) when an image is refused; `log` gets a
 * line per image (leave it out for --json); `structure`: hold the bundle to its quick structure check first (load:
 * nothing else checks manifest.json before the runtime reads it). Undefined when the bundle cannot be opened at all.
 */
export async function checkBundleImages(bundle: string, policy: ImagePolicy, options: {nothing: string; exitCode?: number; structure?: boolean; log?: (line: string) => void}): Promise<{report: ImagesReport; refusal?: KubeferryError} | undefined> {
  // A bundle that cannot be opened is left to the command, which refuses it in its own words and exit code.
  if (!(await openBundleBytes(bundle).then(() => true, () => false))) return undefined
  if (options.structure) {
    // What a loader reads besides index.json (manifest.json, the docker fragments) must agree with the signed
    // manifests: the quick structure check holds them to it (no hashing; the runtime checks digests as it imports).
    const {assertBundleValid} = await import('../bundle/verify.js')
    await assertBundleValid(bundle, {quick: true}).catch((error: unknown) => {
      throw error instanceof KubeferryError ? new KubeferryError(error.code, `${error.message}; ${options.nothing}`, {hint: error.hint, exitCode: options.exitCode}) : error
    })
  }
  const {verifyBundleImages, refusalOf, verdictLine} = await import('../trust/verify-images.js')
  const report = await verifyBundleImages(bundle, policy)
  for (const verdict of report.images) options.log?.(verdictLine(verdict))
  const refusal = refusalOf(report, options.nothing, options.exitCode)
  return {report, ...(refusal ? {refusal} : {})}
}

