import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {EXIT, RUNTIMES, type RuntimeName} from '../bundle/import-plan.js'
import {BaseCommand} from '../cli/base-command.js'
import {bundleImagePolicy, checkBundleImages, imagePolicyFlags} from '../cli/image-verify-flags.js'
import {checkBundleTrust, signedByLine, trustFlags} from '../cli/trust-flags.js'

export default class Load extends BaseCommand {
  static override summary = "Import a bundle's images into this node's container runtime (what the bundle's install.sh does)."
  static override description = [
    "Detects the runtime (containerd, k3s/RKE2, docker, podman, nerdctl, CRI-O), checks the bundle (its .sha256, or its structure and this platform's blobs), imports this node's platform, checks every name and digest afterwards, and pins the sandbox images on containerd so kubelet image GC keeps them.",
    'Images already present with the same digest are skipped. Same plan, checks, output and exit codes as install.sh.',
  ].join('\n\n')
  static override examples = [
    {description: "Into the runtime found on this node, for this node's platform:", command: '<%= config.bin %> load k8s.tar'},
    {description: "Into a given containerd socket and namespace (the kubelet's is k8s.io):", command: '<%= config.bin %> load k8s.tar --runtime containerd --address /run/containerd/containerd.sock --namespace k8s.io'},
    {description: 'Into docker, at a socket given by DOCKER_HOST:', command: 'DOCKER_HOST=unix:///run/docker.sock <%= config.bin %> load k8s.tar --runtime docker'},
    {description: 'Only check the bundle; import nothing:', command: '<%= config.bin %> load k8s.tar --verify-only'},
  ]
  static override args = {bundle: Args.string({description: 'The bundle tar written by `kubeferry create`, or its first part (.tar.001) for a bundle in parts.', required: true})}
  static override flags = {
    runtime: Flags.string({description: 'Container runtime to import into.', options: [...RUNTIMES, 'crio'], default: 'auto'}),
    address: Flags.string({description: 'Runtime socket (containerd: default CONTAINERD_ADDRESS or /run/containerd/containerd.sock; docker: DOCKER_HOST).', helpValue: 'SOCKET'}),
    namespace: Flags.string({description: "containerd namespace (the kubelet's is k8s.io).", default: 'k8s.io'}),
    platform: Flags.string({description: "Import this platform instead of the node's own (uname -m).", helpValue: 'OS/ARCH'}),
    config: Flags.string({description: "The runtime's config file to read the sandbox image (and containerd root) from.", helpValue: 'FILE'}),
    'dry-run': Flags.boolean({description: 'Say what would be imported; change nothing.', default: false}),
    'verify-only': Flags.boolean({description: "Check the bundle's checksums and structure; import nothing.", default: false}),
    'verify-images': Flags.boolean({description: "Refuse, before the runtime sees a byte, unless every image the image policy covers carries a valid cosign signature (see --cosign-key, --image-policy, --trusted-root).", default: false, helpGroup: 'IMAGE SIGNATURES'}),
    ...imagePolicyFlags,
    ...trustFlags,
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Load)
    const {loadBundle} = await import('../runtime/load.js') // not at the top: oclif may import every command to list them
    const json = flags.json
    const policy = await bundleImagePolicy(args.bundle, flags, flags['verify-images'], '--verify-images')
    // Before the runtime is asked anything: a refused bundle exits 4 as install.sh's does.
    const trust = await checkBundleTrust(args.bundle, flags, {nothing: 'imported', exitCode: EXIT.badBundle})
    if (trust && !json) process.stdout.write(`kubeferry: ${signedByLine(trust)}\n`)
    const images = policy && (await checkBundleImages(args.bundle, policy, {nothing: 'nothing was imported', exitCode: EXIT.badBundle, structure: true, log: json ? undefined : (line) => process.stdout.write(`kubeferry: ${line}\n`)}))
    if (images?.refusal) throw images.refusal
    // Errors thrown (bad bundle, no runtime, …) go through the base command like every other command's, keeping
    // their exit codes. The runtime's own lines carry install.sh's "kubeferry: " prefix: on stderr, warnings and
    // errors read like the other commands' ("warning: …", "error: …").
    const result = await loadBundle({
      bundle: args.bundle,
      runtime: flags.runtime as RuntimeName,
      address: flags.address,
      namespace: flags.namespace,
      platform: flags.platform,
      config: flags.config,
      dryRun: flags['dry-run'],
      verifyOnly: flags['verify-only'],
      onLine: (line, kind) => {
        if (kind === 'info') {
          if (!json) process.stdout.write(`${line}\n`)
        } else process.stderr.write(`${line.replace(/^kubeferry: (?=(?:error|warning): )/, '')}\n`)
      },
    })
    if (json) this.printJson({...result, ...(trust ? {signatures: trust} : {}), ...(images ? {imageSignatures: images.report} : {})})
    process.exitCode = result.exitCode
  }
}
