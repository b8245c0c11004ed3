/**
 * What every config renderer needs to know: where `push` put each image (same name rules), which upstream
 * registries nodes will ask for, the sandbox (pause) image, TLS and auth facts. Built once from the flags and,
 * when given, the bundle — renderers are then pure functions of this context.
 */
import {readFileSync} from 'node:fs'
import semver from 'semver'
import {KubeferryError} from '../oci/errors.js'
import {BundleReader} from '../bundle/reader.js'
import {METADATA_FILE, type BundleMetadata} from '../bundle/layout.js'
import {readSourceImages} from '../registry/push-source.js'
import {parseReference, DOCKER_HUB} from '../oci/reference.js'
import {mapRepository, targetRepositories, type NameRules, type PushDestination} from '../registry/rename.js'

export interface ConfigImage {
  /** Canonical name, e.g. registry.k8s.io/pause:3.10 */
  name: string
  registry: string
  repository: string
  tag?: string
  role?: string
  sources?: string[]
}

export interface GeneratedFile {
  /** Where the file goes (absolute on a node, or relative for cluster manifests applied with kubectl/kubeadm). */
  path: string
  /** One line: where it goes and what to do with it. */
  comment: string
  format: 'toml' | 'yaml' | 'json' | 'pem'
  content: string
  /** True only for the pull Secret (the one file allowed to hold a credential). */
  secret?: boolean
}

export interface ConfigResult {
  files: GeneratedFile[]
  warnings: string[]
  notes: string[]
}

export interface ConfigContext {
  destination: PushDestination
  rules: NameRules
  /** The destination speaks plain HTTP (named with --insecure-registry). */
  plainHttp: boolean
  /** TLS without verification (hosts.toml skip_verify, …). */
  skipVerify: boolean
  /** PEM of the registry's CA, placed on nodes beside hosts.toml. */
  caPem?: string
  images: ConfigImage[]
  /** Upstream registries nodes ask for (registry.k8s.io, docker.io, …). */
  upstreams: string[]
  pause: ConfigImage
  kubernetesVersion?: string
  /** The registry needs credentials: nodes need node-level auth for what pull secrets cannot cover. */
  requiresAuth: boolean
  username?: string
  /** `kubeferry serve` at host:port instead of a registry (no prefix, upstream paths). */
  serve?: {url: string; host: string}
  containerdMajor: 1 | 2
}

/** Where containerd reads hosts.toml files (the `config_path` we set). */
export const CERTS_D = '/etc/containerd/certs.d'

/** What kubeadm v1.31 lists, used when no bundle is given (tags unknown). */
const KUBEADM_REPOSITORIES = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy', 'coredns/coredns', 'pause', 'etcd']

export function defaultImages(pauseImage?: string): ConfigImage[] {
  const images: ConfigImage[] = KUBEADM_REPOSITORIES.map((repository) => ({name: `registry.k8s.io/${repository}`, registry: 'registry.k8s.io', repository, role: repository === 'coredns/coredns' ? 'coredns' : repository}))
  const pause = parseReference(pauseImage ?? 'registry.k8s.io/pause:3.10')
  const i = images.findIndex((x) => x.role === 'pause')
  images[i] = {name: `${pause.registry}/${pause.repository}:${pause.tag}`, registry: pause.registry, repository: pause.repository, tag: pause.tag, role: 'pause'}
  return images
}

/** Images of a bundle (names from index.json, roles and sources from bundle.json). */
export async function bundleImages(path: string): Promise<{images: ConfigImage[]; kubernetesVersion?: string}> {
  const reader = await BundleReader.open(path)
  const source = await readSourceImages(reader)
  let meta: BundleMetadata | undefined
  if (reader.has(METADATA_FILE)) meta = await reader.metadata()
  const byName = new Map((meta?.images ?? []).map((i) => [i.name, i]))
  const images = source.map((s) => {
    const m = byName.get(s.name)
    return {name: s.name, registry: s.ref.registry, repository: s.ref.repository, tag: s.ref.tag, role: s.role ?? guessRole(s.ref.repository), sources: m?.sources}
  })
  return {images, kubernetesVersion: meta?.request.kubernetesVersion}
}

function guessRole(repository: string): string | undefined {
  const last = repository.slice(repository.lastIndexOf('/') + 1)
  if (['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy', 'pause', 'etcd', 'coredns'].includes(last)) return last
  return undefined
}

/** kubeadm's pause among the bundle's images: the one kubeadm asked for, else the newest pause tag. */
export function pickPause(images: ConfigImage[], explicit?: string): ConfigImage {
  if (explicit) {
    const ref = parseReference(explicit)
    const found = images.find((i) => i.registry === ref.registry && i.repository === ref.repository && i.tag === ref.tag)
    if (!found && images.length > 0 && images.some((i) => i.tag)) {
      throw new KubeferryError('INVALID_ARGUMENT', `--pause-image ${explicit} is not in the bundle`, {hint: `pick one of: ${images.filter((i) => i.repository.endsWith('pause')).map((i) => i.name).join(', ') || '(the bundle has no pause image)'}`})
    }
    return found ?? {name: `${ref.registry}/${ref.repository}:${ref.tag}`, registry: ref.registry, repository: ref.repository, tag: ref.tag, role: 'pause'}
  }
  const pauses = images.filter((i) => i.repository === 'pause' || i.repository.endsWith('/pause') || i.role === 'pause')
  if (pauses.length === 0) {
    throw new KubeferryError('INVALID_ARGUMENT', 'the bundle has no pause (sandbox) image', {hint: 'build the bundle with --kubernetes-version or --runtime, or name one with --pause-image'})
  }
  const kubeadm = pauses.find((p) => p.sources?.some((s) => s.startsWith('kubeadm')))
  if (kubeadm) return kubeadm
  return [...pauses].sort((a, b) => compareTags(b.tag, a.tag))[0]
}

function compareTags(a?: string, b?: string): number {
  const va = semver.coerce(a ?? '')
  const vb = semver.coerce(b ?? '')
  if (va && vb) return semver.compare(va, vb)
  return (a ?? '').localeCompare(b ?? '')
}

/** Full destination reference of an image (its main name under the rules). */
export function internalName(ctx: Pick<ConfigContext, 'destination' | 'rules'>, image: ConfigImage): string {
  return `${ctx.destination.registry}/${mapRepository(image, ctx.rules)}${image.tag ? `:${image.tag}` : ''}`
}

/** Every destination repository of an image (main + kubeadm CoreDNS alias). */
export function internalRepositories(ctx: Pick<ConfigContext, 'rules'>, image: ConfigImage): string[] {
  return targetRepositories(image, ctx.rules)
}

/** Images that a node asking by upstream name would not find through a prefix mirror (moved by --flatten/--map). */
export function unmirrorable(ctx: Pick<ConfigContext, 'destination' | 'rules' | 'images'>): ConfigImage[] {
  const prefix = ctx.destination.prefix
  return ctx.images.filter((i) => mapRepository(i, ctx.rules) !== (prefix ? `${prefix}/${i.repository}` : i.repository))
}

/** The API host a registry's images are pulled from (docker.io → registry-1.docker.io). */
export function upstreamServer(registry: string): string {
  return registry === DOCKER_HUB ? 'https://registry-1.docker.io' : `https://${registry}`
}

export function readCa(path: string | undefined): string | undefined {
  if (!path) return undefined
  let pem: string
  try {
    pem = readFileSync(path, 'utf8')
  } catch (error) {
    throw new KubeferryError('INVALID_ARGUMENT', `cannot read --ca-file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {hint: 'give the PEM file of the CA that signed the registry\'s certificate'})
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new KubeferryError('INVALID_ARGUMENT', `--ca-file ${path} holds no PEM certificate`)
  return pem
}

/** `http(s)://host` of the destination as nodes reach it. */
export function registryUrl(ctx: Pick<ConfigContext, 'destination' | 'plainHttp'>): string {
  return `${ctx.plainHttp ? 'http' : 'https'}://${ctx.destination.registry}`
}
