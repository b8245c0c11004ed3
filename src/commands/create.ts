import {resolve as resolvePath} from 'node:path'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {imageListFlags, imageListOptions} from '../cli/image-flags.js'
import {clientOptionsFromFlags, registryFlags, stderrLog} from '../cli/registry-flags.js'
import {passphraseFlags, signingKeyFromFlags} from '../cli/trust-flags.js'
import {imagePolicyFlags, imagePolicyFromFlags, policyFlagsWithout} from '../cli/image-verify-flags.js'
import {KubeferryError} from '../oci/errors.js'
import {usageError} from '../cli/usage.js'
import {ALL_PLATFORMS, type ImageRequest} from '../bundle/plan.js'
import {parsePlatform, formatPlatform} from '../oci/platform.js'
import {formatReference} from '../oci/reference.js'
import {parseSplitSize} from '../bundle/parts-naming.js'
import {createProgress, formatBytes} from '../ui/progress.js'
import type {ImageSource} from '../oci/source.js'
import {findTools, toolArches, withToolFlags, writeTools} from '../cli/with-tool.js'
import {afterBundleWritten, signAloneCommand} from '../cli/after-bundle.js'
import type {ImagesReport} from '../trust/verify-images.js'

/** The base of a delta (--base): a lockfile's blobs are planned from the registry for the delta's platforms. */
async function readBaseFor(path: string, source: ImageSource, platforms: string[]) {
  const [{readDeltaBase}, {planBundle}] = await Promise.all([import('../delta/base.js'), import('../bundle/plan.js')])
  return readDeltaBase(resolvePath(path), async (lock) => {
    const plan = await planBundle(source, lock.images.map((i) => ({reference: i.reference, digest: i.digest})), {platforms, skipMissingPlatforms: true})
    return plan.blobs.map((b) => b.digest)
  })
}

export default class Create extends BaseCommand {
  static override summary = 'Build one bundle (a tar) of the images a cluster needs, for docker load, ctr import, skopeo and kubeferry.'
  static override description = [
    'Resolves the image list (as `kubeferry images` does, or from a lockfile), fetches every image through the registry API (mirrors, auth, retries), keeps the upstream bytes and digests, and writes ONE uncompressed tar that is at once an OCI layout (ctr import, skopeo oci-archive:) and a docker archive (docker load, skopeo docker-archive:), with kubeferry/ metadata, SHA256SUMS and install.sh inside. Beside it: BUNDLE.sha256 (sha256sum -c) and NAME.install.sh.',
    'Before anything is fetched it checks that the output directory exists and is writable; once the plan is known, before a byte of the bundle is written, that the bundle will fit there (blobs fetched meanwhile stay in the cache).',
    'Blobs are cached in --cache-dir, verified. A rerun downloads only what is missing, and continues a blob that was cut off (Ctrl-C, kill, lost network) from where it stopped. The tar is byte-identical for the same input (set SOURCE_DATE_EPOCH to stamp a time).',
    'An image without a requested platform is an error unless --skip-missing-platforms, which bundles the platforms it has and warns.',
    'The publishers\' signatures, attestations and SBOMs come along: for each image and each carried platform, cosign\'s tags (sha256-<hex>.sig, .att, .sbom) and OCI 1.1 referrers are looked up and what exists is carried with its upstream digests, listed in kubeferry/bundle.json only (loaders see the same images as without; `inspect` lists them, `push` and `serve` hand them on). --no-signatures leaves them out; --require-signed-images refuses, before writing anything, to bundle an image without a signature.',
    'With --split SIZE the bundle is written as parts NAME.tar.001, NAME.tar.002, … of SIZE bytes (the last one smaller; one part .001 when it all fits in one): plain consecutive byte ranges, written straight from the downloads (the disk needed stays the bundle\'s size), so `cat NAME.tar.0* > NAME.tar` gives the same bundle. Beside them NAME.parts.sha256 (sha256sum -c, one line a part), NAME.tar.sha256 (of the whole) and NAME.install.sh. SIZE is bytes with a unit (4GiB, 700MB, 1500000000) or a named size: fat32 (4 GiB − 1, the largest file FAT32 and exFAT hold), dvd (single-layer DVD±R), bd-25, bd-50 (Blu-ray; the disc sizes leave room for the filesystem and the files beside).',
  ].join('\n\n')
  static override examples = [
    {description: 'Everything kubeadm needs for v1.31.6, plus containerd 1.7\'s default pause image:', command: '<%= config.bin %> create --kubernetes-version v1.31.6 --runtime containerd@1.7 -o k8s-v1.31.6.tar'},
    {description: 'The same images for two platforms (docker load takes the first):', command: '<%= config.bin %> create --kubernetes-version v1.31.6 --platform linux/amd64 --platform linux/arm64 -o k8s.tar'},
    {description: 'In parts that fit a FAT32 USB stick (k8s.tar.001, k8s.tar.002, …):', command: '<%= config.bin %> create --kubernetes-version v1.31.6 --split fat32 -o /media/usb/k8s.tar'},
    {description: 'Only signed images (each must have a cosign signature or a signature referrer), carried with their signatures:', command: '<%= config.bin %> create --lock images.lock.json --require-signed-images -o k8s.tar'},
    {description: 'Exactly the digests of a lockfile, fetched through a local mirror of registry.k8s.io:', command: '<%= config.bin %> create --lock images.lock.json -o k8s.tar --mirror registry.k8s.io=http://127.0.0.1:5000'},
  ]
  static override flags = {
    output: Flags.string({char: 'o', description: 'Bundle file to write (with --split: the name of the parts, FILE.001, …).', required: true, helpValue: 'FILE'}),
    split: Flags.string({description: 'Write the bundle in parts of at most SIZE bytes: 4GiB, 700MB, or fat32, dvd, bd-25, bd-50 (at least 1MiB).', helpValue: 'SIZE'}),
    ...imageListFlags,
    lock: Flags.string({description: 'Build exactly the images (by digest) of a lockfile written by `images --lock`.', helpValue: 'FILE', helpGroup: 'IMAGES'}),
    platform: Flags.string({description: 'Platform to carry, os/arch[/variant] (repeatable), or "all". The first one is docker load\'s. Default linux/amd64.', multiple: true, helpValue: 'PLATFORM'}),
    base: Flags.string({description: 'Make a delta bundle: leave out the layers OLD holds (an earlier bundle or its first part, its bundle.json, its lockfile, or a `kubeferry inventory` file).', helpValue: 'OLD'}),
    'skip-missing-platforms': Flags.boolean({description: 'Bundle an image with the requested platforms it has, instead of failing.', default: false}),
    'cache-dir': Flags.string({description: 'Blob cache (default $XDG_CACHE_HOME/kubeferry or ~/.cache/kubeferry).', helpValue: 'DIR'}),
    progress: Flags.boolean({description: 'Progress bars on a terminal (--no-progress: plain lines).', default: true, allowNo: true}),
    signatures: Flags.boolean({description: 'Carry the publishers\' cosign signatures, attestations and SBOMs (sha256-<hex>.sig/.att/.sbom tags) and OCI 1.1 referrers of each image and platform (--no-signatures: leave them out).', default: true, allowNo: true}),
    'require-signed-images': Flags.boolean({description: 'Refuse, before writing anything, when an image has no signature (a cosign .sig tag or a signature referrer), naming those images.', default: false}),
    ...withToolFlags,
    'verify-signatures': Flags.boolean({description: "Refuse, before writing anything, unless every image the image policy covers carries a valid cosign signature (see --cosign-key, --image-policy, --trusted-root); the others are reported as not checked.", default: false, helpGroup: 'IMAGE SIGNATURES'}),
    ...imagePolicyFlags,
    'trusted-root': Flags.string({description: "Carry this Sigstore trusted_root.json (e.g. from `cosign trusted-root create`) in the bundle: keyless image signatures are checked against it inside (verify --images, load/push --verify-images) and by --verify-signatures here.", helpValue: 'FILE', helpGroup: 'IMAGE SIGNATURES'}),
    ...registryFlags,
    'sign-key': Flags.string({description: 'Sign the bundle with this private key (PEM PKCS#8, ECDSA P-256 or Ed25519): NAME.tar.sig.json beside it, as `kubeferry sign` writes.', helpValue: 'FILE', helpGroup: 'SIGNING'}),
    ...passphraseFlags,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Create)
    // Imported here, not at the top: oclif may import every command just to list them (no oclif.manifest.json).
    const [{buildBundle}, {registrySource}, {sourceDateEpochFromEnv}, {readLockfile}, {resolveImageList}, {RegistryClient}, {BlobStore, defaultCacheDir}, {verifyPlanImages, refusalOf, verdictLine}] = await Promise.all([
      import('../bundle/build.js'),
      import('../registry/source.js'),
      import('../bundle/writer.js'),
      import('../kube/lockfile.js'),
      import('../kube/resolve.js'),
      import('../registry/client.js'),
      import('../store/blob-store.js'),
      import('../trust/verify-images.js'),
    ])
    const partSize = flags.split === undefined ? undefined : parseSplitSize(flags.split) // a usage error before anything
    if (flags['require-signed-images'] && !flags.signatures) throw usageError('--require-signed-images needs the signatures that --no-signatures leaves out', 'drop one of the two flags')
    if (flags['verify-signatures'] && !flags.signatures) throw usageError('--verify-signatures needs the signatures that --no-signatures leaves out', 'drop one of the two flags')
    // A root carried without any signature checks nothing inside, yet the summary would say keyless signatures are checked.
    if (flags['trusted-root'] !== undefined && !flags.signatures) throw usageError('--trusted-root checks the signatures that --no-signatures leaves out', 'drop one of the two flags')
    if (policyFlagsWithout(flags, flags['verify-signatures'])) throw usageError('--cosign-key and --image-policy are for --verify-signatures', 'add --verify-signatures to check the images\' signatures before the bundle is written')
    const imagePolicy = flags['verify-signatures'] ? await imagePolicyFromFlags(flags) : undefined // a key that cannot be read: before any download
    const trustedRoot = flags['trusted-root'] ? await import('../trust/trusted-root.js').then(async (t) => {
      const root = await t.readTrustedRootFile(flags['trusted-root']!)
      return {bytes: root.bytes, descriptor: t.trustedRootDescriptor(root)}
    }) : undefined
    const signKey = flags['sign-key'] ? await signingKeyFromFlags(flags['sign-key'], flags) : undefined // a wrong passphrase fails before any download
    const platforms = (flags.platform ?? ['linux/amd64']).flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean)
    const normalised = platforms.includes(ALL_PLATFORMS) ? [ALL_PLATFORMS] : [...new Set(platforms.map((p) => formatPlatform(parsePlatform(p))))]

    const listFlags = ['kubernetes-version', 'config', 'runtime', 'image', 'images-file', 'from-manifests'] as const
    const hasList = listFlags.some((f) => flags[f] !== undefined && (!Array.isArray(flags[f]) || (flags[f] as string[]).length > 0))
    const requests: ImageRequest[] = []
    const request: Parameters<typeof buildBundle>[0]['request'] = {platforms: normalised}
    const warnings: string[] = []
    if (flags.lock) {
      const lock = await readLockfile(flags.lock)
      for (const image of lock.images) requests.push({reference: image.reference, digest: image.digest, source: `lock ${flags.lock}`})
      request.lockfile = flags.lock
      if (lock.kubernetesVersion) request.kubernetesVersion = lock.kubernetesVersion
    }
    if (hasList || !flags.lock) {
      if (!hasList) {
        throw new KubeferryError('INVALID_ARGUMENT', 'no images given', {hint: 'pass --kubernetes-version, --image, --images-file, --from-manifests or --lock'})
      }
      const list = await resolveImageList(imageListOptions(flags))
      warnings.push(...list.warnings)
      for (const entry of list.entries) requests.push({reference: formatReference(entry.reference), role: entry.role, sources: entry.sources})
      if (list.kubeadm) request.kubernetesVersion = list.kubeadm.version
      if (flags.runtime?.length) request.runtimes = flags.runtime
      if (flags.image?.length) request.images = flags.image
      if (flags['images-file']?.length) request.imagesFiles = flags['images-file']
      if (flags['from-manifests']?.length) request.manifests = flags['from-manifests']
    }
    for (const warning of warnings) this.warn2(warning)
    if (flags['with-tool']) await findTools(toolArches(normalised).arches, 'nothing was downloaded') // a missing file is refused before any download

    const output = resolvePath(flags.output)
    const store = await BlobStore.open(flags['cache-dir'] ? resolvePath(flags['cache-dir']) : defaultCacheDir())
    const log = stderrLog(flags.debug)
    log('debug', 'create: starting')
    const client = new RegistryClient({...(await clientOptionsFromFlags(flags, {log}))})
    const progress = createProgress({mode: flags.progress ? 'auto' : 'plain'})
    const abort = new AbortController()
    const onSignal = (): void =>
      abort.abort(new KubeferryError('INTERNAL', 'interrupted: no bundle was written', {exitCode: 130, hint: 'run the same command again: it continues from what this run downloaded (verified blobs and partly fetched layers stay in the cache)'}))
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    let summary
    let imageSignatures: ImagesReport | undefined
    const verifyPlan = async (...args: Parameters<typeof verifyPlanImages>): Promise<ImagesReport> => {
      const report = await verifyPlanImages(...args)
      const refusal = refusalOf(report, 'no bundle was written')
      if (refusal) throw refusal
      return report
    }
    try {
      const base = flags.base === undefined ? undefined : await readBaseFor(flags.base, registrySource(client), normalised)
      summary = await buildBundle({
        base,
        source: registrySource(client, {lookupIndex: true}),
        store,
        requests,
        platforms: normalised,
        skipMissingPlatforms: flags['skip-missing-platforms'],
        concurrency: flags.concurrency,
        output,
        request,
        sourceDateEpoch: sourceDateEpochFromEnv(),
        progress,
        signal: abort.signal,
        partSize,
        log: (message) => log('debug', message),
        ...(flags.signatures ? {artifacts: {requireSigned: flags['require-signed-images']}} : {}),
        ...(trustedRoot ? {trustedRoot} : {}),
        ...(imagePolicy ? {beforeWrite: async (plan) => void (imageSignatures = await verifyPlan(plan, registrySource(client), imagePolicy))} : {}),
      })
      await progress.stop(true)
    } catch (error) {
      await progress.stop(false)
      throw error
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      await client.close()
    }
    for (const warning of summary.warnings) this.warn2(warning)
    // A signature beside the output that signs the bundle this run replaced would contradict the new one: moved aside.
    const setAside = await afterBundleWritten(summary.output, 'setting aside the signature file of the bundle it replaced', `move ${summary.output}.sig.json away by hand`, async () =>
      import('../trust/sign.js').then(async ({setAsideStaleSignature}) => setAsideStaleSignature(summary.output, summary)),
    )
    if (setAside) this.warn2(`${setAside.from} signed the bundle this run replaced, not the new one: moved to ${setAside.to} (sign the new bundle with kubeferry sign, or create --sign-key)`)
    const tools = flags['with-tool']
      ? await afterBundleWritten(summary.output, 'writing kubeferry beside it (--with-tool)', 'run the same create again: it rewrites the bundle from the cache and writes the files', async () => writeTools(output, summary.platforms, (w) => this.warn2(w)))
      : undefined
    const signature =
      signKey &&
      (await afterBundleWritten(summary.output, 'signing it (--sign-key)', `finish only the signing (the bundle is not rebuilt): ${signAloneCommand(summary.parts?.[0]?.path ?? summary.output, flags['sign-key']!, flags)}`, async () =>
        import('../trust/sign.js').then(async ({signBundle}) => signBundle(summary.output, signKey, summary)),
      ))
    if (flags.json) {
      this.printJson({...summary, ...(trustedRoot ? {trustedRoot: trustedRoot.descriptor} : {}), ...(tools ? {tools} : {}), ...(signature ? {signature} : {}), ...(imageSignatures ? {imageSignatures} : {})})
      return
    }
    for (const verdict of imageSignatures?.images ?? []) this.log(verdictLine(verdict))
    const parts = summary.parts
    if (parts) this.log(`wrote ${summary.output} in ${parts.length === 1 ? '1 part (it fits in one)' : `${parts.length} parts`} (${formatBytes(summary.size)}, sha256 ${summary.sha256})`)
    else this.log(`wrote ${summary.output} (${formatBytes(summary.size)}, sha256 ${summary.sha256})`)
    this.log(
      `  ${summary.images} images, ${summary.platforms.length} platform(s) ${summary.platforms.join(', ')} (docker load: ${summary.dockerPlatform}), ` +
        `${summary.uniqueBlobs} unique blobs (${formatBytes(summary.blobBytes)}; ${summary.downloadedBlobs} downloaded${summary.resumedBlobs ? ` (${summary.resumedBlobs} continued, ${formatBytes(summary.resumedBytes)} kept from an earlier run)` : ''}, ` +
        `${summary.cachedBlobs} from the cache, ${summary.manifests} manifests) in ${summary.seconds.toFixed(1)} s`,
    )
    if (summary.artifacts > 0) this.log(`  ${summary.artifacts} signatures, attestations, SBOMs and referrers carried (kubeferry inspect lists them per image)`)
    if (trustedRoot) this.log(`  Sigstore trusted root carried (${trustedRoot.descriptor.digest}): keyless signatures are checked against it inside`)
    for (const part of parts ?? []) this.log(`  ${part.path} (${formatBytes(part.size)})`)
    if (summary.partsChecksumFile) this.log(`  ${summary.partsChecksumFile}`)
    if (summary.delta) this.log(`  delta against ${summary.delta.base.kind} ${summary.delta.base.name} (for ${summary.delta.for.join(' and ')}): relies on ${summary.delta.reliedBlobs} layers it does not carry, ${formatBytes(summary.delta.savedBytes)} saved`)
    this.log(`  ${summary.checksumFile}`)
    this.log(`  ${summary.installScript}`)
    for (const tool of tools ?? []) this.log(`  ${tool.path} (${formatBytes(tool.size)}, kubeferry for linux/${tool.arch}, listed in ${summary.checksumFile})`)
    if (signature) this.log(`  ${signature.signatureFile} (signed by ${signature.keyFile}, ${signature.algorithm}, keyid ${signature.keyid})`)
  }
}
