import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {prepareOutputDir} from '../cli/output-dir.js'
import {usageError} from '../cli/usage.js'
import {isKubeferryError, KubeferryError} from '../oci/errors.js'
import {parseReference} from '../oci/reference.js'
import {knownRuntimeSeries} from '../kube/runtime-pause.js'
import {
  bundleImages,
  CONFIG_TARGETS,
  defaultImages,
  generateConfig,
  pickPause,
  readCa,
  type ConfigContext,
  type ConfigImage,
  type ConfigTarget,
  type PullCredential,
} from '../config/index.js'
import {nameRulesFrom, parseDestination, type PushDestination} from '../registry/rename.js'
import {hostWithoutPort, isLoopback} from '../registry/tls.js'

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

/** `--serve HOST:PORT` or a URL → base URL and host (http unless https:// is written). */
function parseServe(text: string): {url: string; host: string} {
  const withScheme = /^https?:\/\//i.test(text) ? text : `http://${text}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new KubeferryError('INVALID_ARGUMENT', `invalid --serve "${text}"`, {hint: 'give the HOST:PORT nodes reach kubeferry serve at, e.g. --serve 10.0.0.5:5000'})
  }
  if (url.pathname !== '/' || url.search || url.username) throw new KubeferryError('INVALID_ARGUMENT', `invalid --serve "${text}": no path, query or credentials`, {hint: 'kubeferry serve answers upstream paths at its root'})
  return {url: `${url.protocol}//${url.host}`, host: url.host}
}

/**
 * https:// is kept for a loopback registry unless told otherwise (nodes' configuration must not silently fall back to
 * cleartext, and a node's loopback is not this machine's), but such a registry often serves plain HTTP — docker and
 * kubeferry's own client allow that on loopback, containerd's hosts.toml does not: say how to get http://.
 */
function loopbackSchemeHint(ctx: Pick<ConfigContext, 'destination' | 'plainHttp' | 'serve'>): string | undefined {
  if (ctx.serve || ctx.plainHttp || !isLoopback(hostWithoutPort(ctx.destination.registry))) return undefined
  const host = ctx.destination.registry
  return `${host} is a loopback address, written as https://${host} for the nodes; if it serves plain HTTP (no TLS), add --insecure-registry ${host} to get http:// endpoints`
}

export default class Config extends BaseCommand {
  static override summary = 'Print the runtime, kubeadm and Kubernetes configuration that points nodes at the internal registry.'
  static override description = [
    'Names follow the same rules as `kubeferry push` (give the same --flatten/--map/--no-coredns-alias), so kubeadm and the nodes look exactly where push put the images. With --bundle the upstream registries and tags come from the bundle.',
    'Every file starts with a comment saying where it goes; -o DIR writes them under DIR at those paths (plus README.txt).',
    'Targets: containerd (config.toml for --containerd-version, plus certs.d hosts.toml), containerd2, hosts (hosts.toml only), crio, docker, k3s, rke2, kubeadm, secret (pull Secret and ServiceAccount patch; needs --username with --password-stdin or --password-file), all.',
  ].join('\n\n')
  static override examples = [
    {description: 'containerd configuration for the images of a bundle pushed to registry.corp:5000/k8s:', command: '<%= config.bin %> config --registry registry.corp:5000/k8s --bundle k8s-v1.31.6.tar --for containerd'},
    {description: 'Every target, written under node-config/ at the paths where each file goes:', command: '<%= config.bin %> config --registry registry.corp:5000/k8s --bundle k8s.tar --for all -o node-config/'},
    {description: 'A pull Secret for a registry that needs credentials, the password read from a file:', command: '<%= config.bin %> config --registry registry.corp/k8s --for secret --username puller --password-file /run/secrets/registry'},
    {description: 'hosts.toml files that send the nodes\' pulls to a `kubeferry serve` on 10.0.0.5:', command: '<%= config.bin %> config --serve 10.0.0.5:5000 --bundle k8s.tar --for hosts'},
  ]
  static override flags = {
    registry: Flags.string({description: 'Internal registry and prefix the images were pushed to (as given to push).', helpValue: 'REGISTRY[/PREFIX]', exclusive: ['serve']}),
    serve: Flags.string({description: 'Point nodes at a `kubeferry serve` instead (no prefix: serve answers upstream paths).', helpValue: 'HOST:PORT'}),
    bundle: Flags.string({description: 'The bundle that was pushed: its registries, tags and pause image are used.', helpValue: 'FILE'}),
    for: Flags.string({description: 'What to generate (repeatable).', options: [...CONFIG_TARGETS], multiple: true, required: true}),
    output: Flags.string({char: 'o', description: 'Write the files under DIR (at their destination paths) instead of printing them.', helpValue: 'DIR'}),
    'containerd-version': Flags.string({description: `containerd version on the nodes (known series: ${knownRuntimeSeries('containerd').join(', ')}): 1.x → config version 2 (sandbox_image), 2.x → version 3 (pinned_images.sandbox).`, default: '1.7'}),
    flatten: Flags.boolean({description: 'Images were pushed with --flatten.', default: false}),
    map: Flags.string({description: 'Images were pushed with these --map FROM=TO rules (repeatable).', multiple: true, helpValue: 'FROM=TO'}),
    'no-coredns-alias': Flags.boolean({description: 'Images were pushed with --no-coredns-alias.', default: false}),
    upstream: Flags.string({description: 'Also mirror this upstream registry (repeatable; default: the bundle\'s registries, or registry.k8s.io and docker.io).', multiple: true, helpValue: 'HOST'}),
    'insecure-registry': Flags.string({description: 'The registry speaks plain HTTP (repeatable host[:port]; nodes get http:// endpoints).', multiple: true, helpValue: 'HOST[:PORT]'}),
    'skip-verify': Flags.boolean({description: 'Nodes skip TLS verification for the registry (prefer --ca-file).', default: false}),
    'ca-file': Flags.string({description: 'CA certificate (PEM) of the registry, placed on nodes beside the config.', helpValue: 'FILE'}),
    'pause-image': Flags.string({description: 'Sandbox image to configure (default: kubeadm\'s pause from the bundle, else registry.k8s.io/pause:3.10).', helpValue: 'REF'}),
    'sandbox-ref': Flags.string({description: 'Name the sandbox image by its internal name (matches kubeadm\'s imageRepository) or its upstream name (resolved through the mirror).', options: ['internal', 'upstream'], default: 'internal'}),
    'kubernetes-version': Flags.string({description: 'kubernetesVersion for the kubeadm config when no bundle says it.', helpValue: 'v1.31.6'}),
    username: Flags.string({description: 'Registry user for the pull Secret (and named in node-level auth templates).'}),
    'password-stdin': Flags.boolean({description: 'Read the password from standard input.', default: false, exclusive: ['password-file']}),
    'password-file': Flags.string({description: 'Read the password from this file.', helpValue: 'FILE'}),
    'requires-auth': Flags.boolean({description: 'The registry needs credentials (implied by --username): warn and add node-level auth templates.', default: false}),
    'secret-name': Flags.string({description: 'Name of the pull Secret.', default: 'kubeferry-registry'}),
    namespace: Flags.string({description: 'Namespaces for the pull Secret (repeatable; default: default, kube-system).', multiple: true}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Config)
    if (!flags.registry && !flags.serve) throw usageError('missing flag --registry or --serve: say where the images are (--registry REGISTRY[/PREFIX] or --serve HOST:PORT)', 'use the same REGISTRY[/PREFIX] you gave to kubeferry push, or the HOST:PORT of kubeferry serve')
    if (flags['pause-image']) {
      try {
        parseReference(flags['pause-image'])
      } catch (error) {
        throw isKubeferryError(error) ? new KubeferryError(error.code, `--pause-image: ${error.message}`, {hint: error.hint}) : error
      }
    }
    const serve = flags.serve ? parseServe(flags.serve) : undefined
    const destination: PushDestination = flags.registry ? parseDestination(flags.registry) : {registry: serve!.host, prefix: ''}
    const rules = nameRulesFrom(destination, flags)

    let images: ConfigImage[]
    let kubernetesVersion = flags['kubernetes-version']
    if (flags.bundle) {
      const fromBundle = await bundleImages(flags.bundle)
      images = fromBundle.images
      kubernetesVersion ??= fromBundle.kubernetesVersion
    } else {
      images = defaultImages(flags['pause-image'])
    }
    const pause = pickPause(images, flags['pause-image'])
    const upstreams = [...new Set([...(flags.bundle ? images.map((i) => i.registry) : ['registry.k8s.io', 'docker.io']), ...(flags.upstream ?? []).map((u) => u.toLowerCase())])].sort()
    const credential = await this.credential(flags)
    const major = /^\s*v?(\d+)/.exec(flags['containerd-version'])?.[1]
    if (major !== '1' && major !== '2') throw new KubeferryError('INVALID_ARGUMENT', `unsupported --containerd-version ${flags['containerd-version']}`, {hint: 'give 1.6, 1.7 or 2.0 (any 1.x or 2.x)'})
    const insecure = (flags['insecure-registry'] ?? []).map((h) => h.toLowerCase().replace(/^https?:\/\//, ''))
    // `--registry http://HOST…` says plain HTTP as clearly as --insecure-registry HOST does (push drops the scheme:
    // the client probes; node configuration is static, so the scheme written there must be the one meant).
    const plainHttp = insecure.includes(destination.registry) || /^http:\/\//i.test(flags.registry ?? '')
    const ctx: ConfigContext = {
      destination,
      rules,
      plainHttp,
      skipVerify: flags['skip-verify'],
      caPem: readCa(flags['ca-file']),
      images,
      upstreams,
      pause,
      kubernetesVersion,
      requiresAuth: flags['requires-auth'] || flags.username !== undefined,
      username: flags.username,
      serve,
      containerdMajor: major === '2' ? 2 : 1,
    }
    const result = generateConfig(ctx, {
      targets: flags.for as ConfigTarget[],
      sandboxRef: flags['sandbox-ref'] as 'internal' | 'upstream',
      credential,
      secretName: flags['secret-name'],
      namespaces: flags.namespace,
    })
    const hint = loopbackSchemeHint(ctx)
    if (hint) result.notes.push(hint)

    if (flags.output) {
      const dir = flags.output
      await prepareOutputDir(dir, `--output directory ${dir}`)
      const readme: string[] = ['Files generated by kubeferry config; each path below is relative to this directory and mirrors where it goes.', '']
      for (const f of result.files) {
        const target = join(dir, f.path.replace(/^\/+/, ''))
        await mkdir(dirname(target), {recursive: true})
        await writeFile(target, f.content, {mode: f.secret ? 0o600 : 0o644})
        readme.push(`${f.path.replace(/^\/+/, '')}\n  ${f.comment}`)
      }
      if (result.warnings.length) readme.push('', 'Warnings:', ...result.warnings.map((w) => `- ${w}`))
      if (result.notes.length) readme.push('', 'Notes:', ...result.notes.map((n) => `- ${n}`))
      await writeFile(join(dir, 'README.txt'), `${readme.join('\n')}\n`)
    }
    if (flags.json) {
      this.printJson({files: flags.output ? result.files.map(({content: _c, ...rest}) => rest) : result.files, warnings: result.warnings, notes: result.notes, ...(flags.output ? {output: flags.output} : {})})
    } else if (!flags.output) {
      for (const f of result.files) process.stdout.write(`# ==> ${f.path}\n${f.content.endsWith('\n') ? f.content : `${f.content}\n`}\n`)
    } else {
      for (const f of result.files) process.stderr.write(`wrote ${join(flags.output, f.path.replace(/^\/+/, ''))}\n`)
    }
    for (const w of result.warnings) this.warn2(w)
    if (!flags.json) for (const n of result.notes) process.stderr.write(`note: ${n}\n`)
  }

  private async credential(flags: {username?: string; 'password-stdin': boolean; 'password-file'?: string}): Promise<PullCredential | undefined> {
    if (!flags.username) {
      if (flags['password-stdin'] || flags['password-file']) throw new KubeferryError('INVALID_ARGUMENT', 'a password was given without --username')
      return undefined
    }
    let password: string | undefined
    if (flags['password-stdin']) password = await readStdin()
    else if (flags['password-file']) {
      try {
        password = (await readFile(flags['password-file'], 'utf8')).replace(/\r?\n$/, '')
      } catch (error) {
        throw new KubeferryError('INVALID_ARGUMENT', `cannot read --password-file ${flags['password-file']}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
      }
    }
    if (password === undefined) return undefined
    if (password === '') throw new KubeferryError('INVALID_ARGUMENT', 'the password read is empty', {hint: 'pipe it into --password-stdin or put it in the --password-file'})
    return {username: flags.username, password}
  }
}
