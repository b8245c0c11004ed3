import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {clientOptionsFromFlags, registryFlags, stderrLog} from '../cli/registry-flags.js'
import {bundleImagePolicy, checkBundleImages, imagePolicyFlags} from '../cli/image-verify-flags.js'
import {checkBundleTrust, signedByLine, trustFlags} from '../cli/trust-flags.js'
import {pushBundle, PLATFORM_POLICIES, type PlatformPolicy, type PushEvent, type PushReport, type TargetResult} from '../registry/push.js'
import {formatDestination, nameRulesFrom, parseDestination} from '../registry/rename.js'
import {createProgress} from '../ui/progress.js'
import {forPush} from '../cli/push-errors.js'


// Mirrors are for pulls; push writes to exactly the registry it is given.
const {mirror: _mirror, ...pushRegistryFlags} = registryFlags

/** Where an image went, for its progress line: `→ REF[, REF…] DIGEST` (each with its digest when they differ). */
function describeTargets(targets: TargetResult[]): string {
  const digests = new Set(targets.map((t) => t.digest))
  const names = targets.map((t) => `${t.reference}${digests.size > 1 ? `@${t.digest}` : ''}${t.status === 'overwritten' ? ` (replaced ${t.previousDigest})` : ''}${t.filtered ? ' (filtered index)' : ''}`)
  return `→ ${names.join(', ')}${digests.size === 1 ? ` ${targets[0].digest}` : ''}`
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

export default class Push extends BaseCommand {
  static override summary = 'Push a bundle\'s images into a registry, digests unchanged.'
  static override description = [
    'Names follow rules: by default the upstream path is kept under the prefix (registry.k8s.io/pause:3.10 → REGISTRY/PREFIX/pause:3.10, docker.io/library/x → REGISTRY/PREFIX/library/x); --flatten keeps only the last path component; --map FROM=TO places a repository (or every repository under a path) elsewhere. CoreDNS is also pushed as PREFIX/coredns, where kubeadm looks for it with a custom imageRepository (--no-coredns-alias to skip).',
    'Blobs and manifests already in the registry are skipped (a rerun on a complete registry only checks one tag per name), blobs are mounted across repositories where possible, and a tag that points at another digest is refused unless --overwrite.',
    'Sparse indexes (platforms listed but not in the bundle) are refused by some registries (distribution: MANIFEST_BLOB_UNKNOWN). --platform-policy auto (the default) pushes the upstream index and, only if the registry refuses it, an index listing just the platforms present: that tag then has a NEW index digest (printed), while platform manifests keep their upstream digests. sparse pushes the upstream index or fails; filtered always pushes the filtered index.',
  ].join('\n\n')
  static override examples = [
    {description: 'Push under registry.corp:5000/k8s (pause → registry.corp:5000/k8s/pause):', command: '<%= config.bin %> push k8s-v1.31.6.tar registry.corp:5000/k8s'},
    {description: 'Show what would be pushed; write nothing:', command: '<%= config.bin %> push k8s-v1.31.6.tar registry.corp:5000/k8s --dry-run'},
    {description: 'With credentials, the password read from standard input:', command: 'echo "$PASSWORD" | <%= config.bin %> push k8s.tar registry.corp/k8s --username ci --password-stdin'},
    {description: 'Flat names, and bitnami images under third-party/:', command: '<%= config.bin %> push apps.tar registry.corp/apps --flatten --map docker.io/bitnami=third-party/bitnami'},
  ]
  static override args = {
    bundle: Args.string({description: 'Bundle file (from kubeferry create), or its first part (.tar.001) for a bundle in parts.', required: true}),
    registry: Args.string({description: 'Destination REGISTRY[/PREFIX], e.g. registry.corp:5000/k8s.', required: true}),
  }
  static override flags = {
    flatten: Flags.boolean({description: 'Keep only the last path component of each repository (coredns/coredns → coredns).', default: false}),
    map: Flags.string({description: 'Place an upstream repository (or every one under a path) at TO under the prefix (repeatable).', multiple: true, helpValue: 'FROM=TO'}),
    'no-coredns-alias': Flags.boolean({description: 'Do not also push CoreDNS as PREFIX/coredns (kubeadm\'s name with a custom imageRepository).', default: false}),
    'platform-policy': Flags.string({description: 'What to push for an index whose other platforms are not in the bundle.', options: PLATFORM_POLICIES, default: 'auto'}),
    overwrite: Flags.boolean({description: 'Replace tags that already point at another digest.', default: false}),
    'dry-run': Flags.boolean({description: 'Only show what would be pushed (checks the registry, writes nothing).', default: false}),
    progress: Flags.boolean({description: 'Progress bars on a terminal (--no-progress: a plain line per image; --json: none).', default: true, allowNo: true}),
    verify: Flags.boolean({description: 'Verify every blob of the bundle before pushing (blobs are always verified while they stream).', default: false}),
    'verify-images': Flags.boolean({description: "Refuse, before the registry is contacted, unless every image the image policy covers carries a valid cosign signature (see --cosign-key, --image-policy, --trusted-root).", default: false, helpGroup: 'IMAGE SIGNATURES'}),
    ...imagePolicyFlags,
    ...pushRegistryFlags,
    ...trustFlags,
  }

  /** Set once parsed: the error hints name them. */
  private target: {bundle?: string; registry?: string} = {}

  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    return super.catch(forPush(error, this.target.bundle, this.target.registry) as typeof error)
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Push)
    // Signatures before the registry is contacted at all: a refused bundle sends it nothing. (Before `target` is set:
    // their hints say what to do about a signature, not the damaged-bundle hint push gives its own bundle errors.)
    const policy = await bundleImagePolicy(args.bundle, flags, flags['verify-images'], '--verify-images')
    const trust = await checkBundleTrust(args.bundle, flags, {nothing: 'pushed'})
    if (trust && !flags.json) this.log(`${args.bundle}: ${signedByLine(trust)}`)
    const images = policy && (await checkBundleImages(args.bundle, policy, {nothing: 'nothing was pushed', log: flags.json ? undefined : (line) => this.log(line)}))
    if (images?.refusal) throw images.refusal
    this.target = {bundle: args.bundle}
    // Imported here, not at the top: oclif may import every command just to list them (no oclif.manifest.json).
    const [{BundleReader}, {assertBundleValid}, {RegistryClient}, {addReferrer}] = await Promise.all([import('../bundle/reader.js'), import('../bundle/verify.js'), import('../registry/client.js'), import('../registry/referrers.js')])
    const destination = parseDestination(args.registry)
    this.target.registry = destination.registry
    const rules = nameRulesFrom(destination, flags)
    // Structure and references always (cheap); every blob's hash up front only with --verify — blobs are verified
    // while they stream anyway, so a corrupt one can never be committed, but --verify fails before pushing anything.
    // The check runs while push reads the manifests and asks the registry what it has (nothing is written before it
    // passes); opening the reader first lets the check reuse its tar index.
    let reader: Awaited<ReturnType<typeof BundleReader.open>>
    try {
      reader = await BundleReader.open(args.bundle)
    } catch (error) {
      await assertBundleValid(args.bundle, {quick: true}) // its message lists the problem the way verify does
      throw error
    }
    // A bundle in parts with its .parts.sha256 has every part hashed first: a damaged part is named before any upload.
    const verified = assertBundleValid(args.bundle, {quick: !flags.verify, checkParts: true})
    verified.catch(() => {}) // awaited by pushBundle (as its gate); not unhandled meanwhile

    const log = stderrLog(flags.debug)
    const client = new RegistryClient({...(await clientOptionsFromFlags(flags, {log, credentialsHost: destination.registry})), mirrors: {}})
    // Bars on a terminal, plain lines otherwise (or with --no-progress), nothing with --json.
    const progress = createProgress({mode: flags.json ? 'none' : flags.progress ? 'auto' : 'plain', labels: {done: 'pushed', total: 'uploading'}})
    const onEvent = (event: PushEvent) => {
      switch (event.type) {
        case 'planned':
          progress.note(`${event.targets} name(s) for ${event.images} image(s) in ${formatDestination(destination)}: ${event.targets - event.toPush} already there, ${event.toPush} to push`)
          if (!flags['dry-run'] && event.pushing.length > 0) progress.start(event.pushing.map((image) => ({name: image.source, total: image.bytes, done: 0})), event.bytes)
          break
        case 'bytes':
          if (event.source === undefined) progress.bundleBytes(event.bytes)
          else progress.bytes(event.source, event.bytes)
          break
        case 'image-done':
          progress.itemDone(event.source, describeTargets(event.targets))
          break
        case 'filtered':
          progress.note(`note: ${event.reference}: registry refused the sparse upstream index (${event.reason}); pushed an index of the bundle's platforms: ${event.digest} (upstream ${event.upstreamDigest})`)
          break
        default:
          break
      }
    }
    let report: PushReport
    try {
      report = await pushBundle(reader, client, {
        destination,
        rules,
        platformPolicy: flags['platform-policy'] as PlatformPolicy,
        concurrency: flags.concurrency,
        overwrite: flags.overwrite,
        dryRun: flags['dry-run'],
        gate: verified,
        onEvent,
        addReferrer: (repo, subject, desc) => addReferrer(client, repo, subject, desc),
      })
      await progress.stop(true)
    } catch (error) {
      await progress.stop(false)
      throw error
    } finally {
      await client.close()
    }
    if (flags.json) {
      this.printJson(images ? {...report, imageSignatures: images.report} : report)
    } else {
      this.render(report)
    }
    if (report.images.some((i) => i.targets.some((t) => t.status === 'conflict'))) process.exitCode = 1
  }

  private render(report: PushReport): void {
    if (report.dryRun) {
      for (const image of report.images) {
        for (const t of image.targets) {
          this.log(`${t.status.padEnd(15)} ${image.source} → ${t.reference}${t.previousDigest ? ` (now ${t.previousDigest})` : ''}${t.filtered ? ` (filtered index ${t.digest})` : ''}`)
        }
      }
      const a = report.artifacts
      if (a) this.log(`signatures, attestations, SBOMs and referrers: ${a.pushed} to push, ${a.present} already there${a.skipped.length ? `, ${a.skipped.length} left out` : ''}`)
      this.log(`dry run: ${report.blobs.toUpload ?? 0} blob(s) to upload (${mb(report.blobs.bytesToUpload ?? 0)}); nothing was written`)
      return
    }
    for (const image of report.images) {
      for (const t of image.targets) this.log(`${t.reference}@${t.digest}`)
    }
    const filtered = report.images.flatMap((i) => i.targets.filter((t) => t.filtered))
    if (filtered.length > 0) {
      this.log(`note: ${filtered.length} name(s) carry a filtered index (only the bundle's platforms), so their index digest differs from upstream; platform manifests keep upstream digests`)
    }
    const b = report.blobs
    const a = report.artifacts
    if (a) this.log(`signatures, attestations, SBOMs and referrers: ${a.pushed} pushed, ${a.present} already there${a.skipped.length ? `, ${a.skipped.length} left out:` : ''}`)
    for (const s of a?.skipped ?? []) this.log(`  ${s.reference}: ${s.reason}`)
    this.log(`pushed to ${report.destination} in ${(report.durationMs / 1000).toFixed(2)} s: ${b.uploaded} blob(s) uploaded (${mb(b.bytesUploaded)}), ${b.mounted} mounted, ${b.present} already there; ${report.manifests.pushed} manifest(s) written`)
  }
}
