import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {damagedBundleHint} from '../cli/bundle-hints.js'
import {bundleImagePolicy, checkBundleImages, imagePolicyFlags} from '../cli/image-verify-flags.js'
import {checkBundleTrust, signedByLine, trustFlags} from '../cli/trust-flags.js'
import {describeError, KubeferryError} from '../oci/errors.js'
import {formatBytes} from '../ui/progress.js'

export default class Verify extends BaseCommand {
  static override summary = 'Check a bundle offline: structure, every blob\'s digest and size, references, manifest.json, checksums.'
  static override description = [
    'Reads the whole bundle once, streaming. Every problem found is listed (not just the first); the exit code is 0 only when all checks hold.',
    '--quick checks structure, sizes and references without hashing the layers.',
    "--images also checks the publishers' cosign signatures the bundle carries, offline: each image must carry a valid signature by a key its --image-policy entry allows (else by a --cosign-key); images neither names are reported as not checked. Keyless signatures (registry.k8s.io's; cosign's legacy .sig or a Sigstore bundle referrer) are checked against the Sigstore trusted root the bundle carries (create --trusted-root) or --trusted-root FILE: certificate chain, transparency log entry, identity and issuer; without a trusted root they are reported as not checked and never count as verified.",
  ].join('\n\n')
  static override examples = [
    {description: 'Every check, every blob hashed:', command: '<%= config.bin %> verify k8s-v1.31.6.tar'},
    {description: 'The report as JSON:', command: '<%= config.bin %> verify k8s.tar --json'},
    {description: "And the publishers' cosign signatures of the images, with their key:", command: '<%= config.bin %> verify apps.tar --images --cosign-key vendor-cosign.pub'},
    {description: "registry.k8s.io's keyless signatures, against a trusted root fetched outside (`cosign trusted-root create`):", command: '<%= config.bin %> verify k8s.tar --images --trusted-root trusted_root.json'},
  ]
  static override args = {bundle: Args.string({description: 'Bundle file (.tar), or its first part (.tar.001) for a bundle in parts.', required: true})}
  static override flags = {
    quick: Flags.boolean({description: 'Skip hashing blob contents (structure, sizes and references only).', default: false}),
    images: Flags.boolean({description: "Also check the publishers' cosign signatures of the images (see --cosign-key, --image-policy, --trusted-root).", default: false, helpGroup: 'IMAGE SIGNATURES'}),
    ...imagePolicyFlags,
    ...trustFlags,
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Verify)
    const {verifyBundle} = await import('../bundle/verify.js') // not at the top: oclif may import every command to list them
    const trust = await checkBundleTrust(args.bundle, flags, {nothing: 'verified further'}) // signatures first: a refused bundle is not read on
    const policy = await bundleImagePolicy(args.bundle, flags, flags.images, '--images') // a key that cannot be read: before the long pass
    const checked = await verifyBundle(args.bundle, {quick: flags.quick})
    // The images' signatures are read from the bundle; a bundle too damaged to read them is reported by the checks above.
    const images = policy ? await checkBundleImages(args.bundle, policy, {nothing: 'the images are not trusted', log: flags.json ? undefined : (line) => this.log(line)}).catch((error: unknown) => (checked.ok ? Promise.reject(error) : undefined)) : undefined
    const result = {...checked, ...(trust ? {signatures: trust} : {}), ...(images ? {imageSignatures: images.report} : {})}
    // A failed check ends like every command's error: an `error:` line naming the bundle and a hint (--json: the
    // report with an `error` member, as the other commands' {"error": …} documents).
    const error = result.ok
      ? images?.refusal
      : new KubeferryError('BUNDLE_INVALID', `${args.bundle} failed verification: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}${flags.json ? '' : ' (listed above)'}`, {hint: damagedBundleHint(args.bundle)})
    if (flags.json) {
      // `ok` is the whole verdict, as the exit code: a script that reads only `.ok` must not accept refused images.
      this.printJson(error ? {...result, ok: false, error: error.toJSON()} : result)
    } else if (result.ok) {
      if (images) this.log(`${args.bundle}: images: ${images.report.verified} verified, ${images.report.notChecked} not checked, ${images.report.refused} refused`)
      if (!error) this.log(`${args.bundle}: OK (${result.images} images, ${result.blobs} blobs${flags.quick ? ', contents not hashed' : `, ${formatBytes(result.bytesHashed)} hashed`}${trust ? `; ${signedByLine(trust)}` : ''})`)
      const d = result.delta
      if (d) this.log(`${args.bundle}: a delta against ${d.base.kind} ${d.base.name}${d.base.sha256 ? ` (sha256 ${d.base.sha256})` : ''}, for ${d.for.join(' and ')}: relies on ${d.reliedBlobs} layers (${formatBytes(d.reliedBytes)}) it does not carry, used by ${d.images.length} images; the runtime or registry must hold them (load, install.sh and push check)`)
    } else {
      for (const problem of result.problems) process.stderr.write(`${args.bundle}: ${problem.kind}: ${problem.message}\n`)
    }
    if (error) process.stderr.write(`error: ${describeError(error)}\n`)
    if (error) process.exitCode = 1
  }
}
