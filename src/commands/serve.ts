import {readFile} from 'node:fs/promises'
import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {bundleImagePolicy, checkBundleImages, imagePolicyFlags, policyFlagsWithout} from '../cli/image-verify-flags.js'
import {checkBundleTrust, signedByLine, trustFlags} from '../cli/trust-flags.js'
import {KubeferryError} from '../oci/errors.js'
import {AccessLog} from '../serve/access-log.js'
import {normalizePrefix} from '../registry/names.js'
import {uniqueBundles} from '../serve/unique-bundles.js'

export const DEFAULT_LISTEN = '127.0.0.1:5000'

export default class Serve extends BaseCommand {
  static override summary = 'Serve bundles as a read-only OCI registry (pull only), straight out of the tar.'
  static override description = `Answers the OCI distribution API (/v2/, manifests, blobs with Range, tags/list, _catalog) from one or more bundles, without unpacking them. Each image is served at its upstream path (pause, coredns/coredns, library/busybox), so a containerd hosts.toml mirror for registry.k8s.io or a docker registry-mirrors entry works without rewriting names; with --prefix it is also served at PREFIX/<path>, where \`kubeferry push REGISTRY/PREFIX\` would put it. CoreDNS is also answered as coredns (what kubeadm asks for with a custom imageRepository).

Listens on ${DEFAULT_LISTEN} (this machine only) unless told otherwise: pass --listen 0.0.0.0:5000 to serve other nodes. Writes are refused with 405 UNSUPPORTED.

Every bundle is verified before it is served (every blob hashed); a bundle that fails is refused. With --verify-images the publishers' cosign signatures of its images are held to the image policy too, and a bundle with a refused image is not served. --no-verify starts at once and hashes each blob the first time it is served instead: a blob that does not match is cut off mid-answer and never served again. With several bundles the first one given wins a tag both hold (a warning names it); a file named twice (the same path, a symlink) is served once.

One access-log line per request on stderr (--json: JSON lines). SIGTERM or SIGINT stop it gracefully: running downloads finish (up to 10 s).`
  static override examples = [
    {description: 'For this machine only, on 127.0.0.1:5000:', command: '<%= config.bin %> serve k8s-v1.31.6.tar'},
    {description: 'Two bundles for every node, also under the prefix k8s/ (as `push REGISTRY/k8s` names them):', command: '<%= config.bin %> serve k8s-v1.31.6.tar extras.tar --listen 0.0.0.0:5000 --prefix k8s'},
    {description: 'Over HTTPS:', command: '<%= config.bin %> serve k8s.tar --listen 0.0.0.0:5443 --tls-cert mirror.crt --tls-key mirror.key'},
  ]
  static override strict = false
  static override args = {bundle: Args.string({description: 'Bundle tar(s) made by `kubeferry create` (a bundle in parts: its first part, .tar.001).', required: true})}
  static override flags = {
    listen: Flags.string({description: `Address to listen on (HOST:PORT; port 0 picks a free one).`, default: DEFAULT_LISTEN, helpValue: 'HOST:PORT'}),
    'tls-cert': Flags.string({description: 'Serve HTTPS with this PEM certificate (chain).', dependsOn: ['tls-key'], helpValue: 'FILE'}),
    'tls-key': Flags.string({description: 'PEM private key for --tls-cert.', dependsOn: ['tls-cert'], helpValue: 'FILE'}),
    prefix: Flags.string({description: 'Also serve every image under this path (as `push REGISTRY/PREFIX` names them), e.g. k8s → k8s/pause.', helpValue: 'PATH'}),
    verify: Flags.boolean({description: 'Verify every bundle fully before serving; --no-verify verifies each blob when first served.', default: true, allowNo: true}),
    'grace-period': Flags.integer({description: 'Seconds running downloads may take to finish on SIGTERM/SIGINT.', default: 10, min: 0}),
    ...trustFlags,
    'verify-images': Flags.boolean({description: "Refuse to serve, before the port is opened, unless every image the image policy covers carries a valid cosign signature (see --cosign-key, --image-policy, --trusted-root).", default: false, helpGroup: 'IMAGE SIGNATURES'}),
    ...imagePolicyFlags,
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Serve)
    // Imported here, not at the top: oclif may import every command just to list them (no oclif.manifest.json).
    const [{assertBundleValid}, {loadCatalog, parseListen, startRegistryServer}] = await Promise.all([import('../bundle/verify.js'), import('../serve/server.js')])
    const log = new AccessLog(flags.json)
    const {bundles, repeated} = await uniqueBundles(argv as string[])
    for (const {path, sameAs} of repeated) log.event('info', `${path}: the same file as ${sameAs}; served once`)
    // Every bundle's signatures before anything is served (or the port is even opened).
    for (const bundle of bundles) {
      const trust = await checkBundleTrust(bundle, flags, {nothing: 'served'})
      if (trust) log.event('info', `${bundle}: ${signedByLine(trust)}`)
    }
    // The publishers' image signatures (--verify-images), every bundle's, also before the port is opened.
    const imageSignatures = await this.checkImages(bundles, flags, log)
    const address = parseListen(flags.listen)
    const prefix = normalizePrefix(flags.prefix)
    let tls: {cert: Buffer; key: Buffer} | undefined
    if (flags['tls-cert'] && flags['tls-key']) {
      const read = async (file: string, what: string): Promise<Buffer> =>
        readFile(file).catch((error: NodeJS.ErrnoException) => {
          throw new KubeferryError('IO', `cannot read TLS ${what} ${file}: ${error.code ?? error.message}`, {hint: 'check the path and permissions'})
        })
      tls = {cert: await read(flags['tls-cert'], 'certificate'), key: await read(flags['tls-key'], 'key')}
    }

    const started = Date.now()
    // --no-verify still runs the quick check (structure, references, sizes): only blob hashing is deferred.
    const catalog = await loadCatalog(bundles, {prefix, verify: async (path) => assertBundleValid(path, {quick: !flags.verify}), contentVerified: flags.verify})
    if (flags.verify) log.event('info', `verified ${bundles.length} bundle(s), ${catalog.contents.size} blobs, in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    for (const warning of catalog.warnings) log.event('warning', warning)

    const running = await startRegistryServer(catalog, {...address, tls, log})
    const summary = {
      event: 'listening',
      url: running.url,
      bundles,
      images: catalog.images.length,
      repositories: catalog.repositoryNames().length,
      verify: flags.verify ? 'at-start' : 'on-first-serve',
      ...(prefix ? {prefix} : {}),
      ...(imageSignatures ? {imageSignatures} : {}),
    }
    // The stop signals are taken before the listening line is printed: whoever reads that line (systemd, a script, a
    // test) may send SIGTERM at once, and without a listener Node.js would die of it instead of stopping gracefully.
    let stopSignal: string | undefined
    let wake: (() => void) | undefined
    const onSignal = (signal: string): void => {
      stopSignal ??= signal
      wake?.()
    }
    const onTerm = (): void => onSignal('SIGTERM')
    const onInt = (): void => onSignal('SIGINT')
    process.on('SIGTERM', onTerm)
    process.on('SIGINT', onInt)
    if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`)
    else {
      process.stdout.write(`serving ${catalog.images.length} images (${summary.repositories} repositories) on ${running.url}\n`)
      if (address.host === '127.0.0.1' || address.host === '::1' || address.host === 'localhost') {
        log.event('info', 'listening on loopback only; use --listen 0.0.0.0:5000 to serve other nodes')
      }
    }
    if (stopSignal === undefined) await new Promise<void>((resolve) => (wake = resolve))
    process.off('SIGTERM', onTerm)
    process.off('SIGINT', onInt)
    log.event('info', `${stopSignal}: shutting down (running downloads get ${flags['grace-period']} s)`)
    await running.close(flags['grace-period'] * 1000)
    log.event('info', 'stopped')
  }

  /**
   * --verify-images: each bundle's images held to the image policy (load and push do the same, image-verify-flags.ts);
   * the first bundle with a refused image stops serve. The counts over all bundles, or undefined when not asked.
   */
  private async checkImages(bundles: string[], flags: {'verify-images': boolean; 'cosign-key'?: string[]; 'image-policy'?: string; 'trusted-root'?: string}, log: AccessLog): Promise<{verified: number; notChecked: number; refused: number} | undefined> {
    // --trusted-root counts too: serve carries nothing, so without --verify-images it would do nothing (a usage error).
    if (!flags['verify-images'] && !policyFlagsWithout(flags, false, true)) return undefined
    let counts: {verified: number; notChecked: number; refused: number} | undefined
    let policy: Awaited<ReturnType<typeof bundleImagePolicy>>
    for (const bundle of bundles) {
      // A bundle that cannot be opened is left to the catalog, which refuses it in its own words (still before the port).
      policy ??= await bundleImagePolicy(bundle, flags, flags['verify-images'], '--verify-images')
      if (!policy) continue
      const checked = await checkBundleImages(bundle, policy, {nothing: 'nothing was served', log: (line) => log.event('info', `${bundle}: ${line}`)})
      if (!checked) continue
      const {verified, notChecked, refused} = checked.report
      // The bundle's total, in verify --images' words, before a refusal stops serve.
      log.event('info', `${bundle}: images: ${verified} verified, ${notChecked} not checked, ${refused} refused`, {verified, notChecked, refused})
      if (checked.refusal) throw checked.refusal
      counts = {verified: (counts?.verified ?? 0) + verified, notChecked: (counts?.notChecked ?? 0) + notChecked, refused: (counts?.refused ?? 0) + refused}
    }
    return counts
  }
}
