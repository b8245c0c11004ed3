/**
 * The flags of the publishers' image signature checks (issue 19 d4) for verify --images, load/push --verify-images
 * and create --verify-signatures, and the one call each command makes.
 */
import * as Flags from '@oclif/core/flags'
import {openBundleBytes} from '../bundle/parted-bytes.js'
import type {KubeferryError} from '../oci/errors.js'
import type {ImagePolicy} from '../trust/image-policy.js'
import type {ImagesReport} from '../trust/verify-images.js'

export const imagePolicyFlags = {
  'cosign-key': Flags.string({description: "A publisher's cosign public key (PEM, e.g. cosign.pub; repeatable): images no --image-policy entry names must carry a valid cosign signature by one of them.", multiple: true, helpValue: 'FILE', helpGroup: 'IMAGE SIGNATURES'}),
  'image-policy': Flags.string({description: 'JSON file mapping registry/repository globs to the cosign keys (files or inline PEM) or keyless identities allowed: {"images": [{"match": "registry.corp/apps/**", "keys": ["cosign.pub"]}]}. Built in: registry.k8s.io/** keyless (krel-trust@k8s-releng-prod.iam.gserviceaccount.com; keyless is not checked yet).', helpValue: 'FILE', helpGroup: 'IMAGE SIGNATURES'}),
}

export interface ImagePolicyFlagValues {
  'cosign-key'?: string[]
  'image-policy'?: string
}

/** The policy these flags give (the built-in entries always apply). */
export async function imagePolicyFromFlags(flags: ImagePolicyFlagValues): Promise<ImagePolicy> {
  const {resolveImagePolicy} = await import('../trust/image-policy.js')
  return resolveImagePolicy({policyFile: flags['image-policy'], cosignKeys: flags['cosign-key']})
}

/** Whether the policy flags were given without the switch that uses them (a usage error: they would do nothing). */
export function policyFlagsWithout(flags: ImagePolicyFlagValues, enabled: boolean): boolean {
  return !enabled && (Boolean(flags['cosign-key']?.length) || flags['image-policy'] !== undefined)
}

/**
 * Check the bundle's images: the report, and the refusal (with `exitCode`) when an image is refused; `log` gets a
 * line per image (leave it out for --json). Undefined when the bundle cannot be opened at all.
 */
export async function checkBundleImages(bundle: string, policy: ImagePolicy, options: {nothing: string; exitCode?: number; log?: (line: string) => void}): Promise<{report: ImagesReport; refusal?: KubeferryError} | undefined> {
  // A bundle that cannot be opened is left to the command, which refuses it in its own words and exit code.
  if (!(await openBundleBytes(bundle).then(() => true, () => false))) return undefined
  const {verifyBundleImages, refusalOf, verdictLine} = await import('../trust/verify-images.js')
  const report = await verifyBundleImages(bundle, policy)
  for (const verdict of report.images) options.log?.(verdictLine(verdict))
  const refusal = refusalOf(report, options.nothing, options.exitCode)
  return {report, ...(refusal ? {refusal} : {})}
}

