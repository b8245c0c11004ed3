/**
 * kubeadm `ClusterConfiguration` naming exactly where `push` put the images. kubeadm builds names as
 * `<imageRepository>/<component>:<tag>` (control plane, kube-proxy, pause), `<etcd.local.imageRepository>/etcd:<tag>`
 * and, for CoreDNS, `<dns.imageRepository or imageRepository>/coredns:<tag>` — adding the `/coredns` sub-path only
 * for the default registry.k8s.io (cmd/kubeadm/app/images). So each setting is the parent path of where the
 * image was pushed, and a rule that moved an image somewhere kubeadm cannot express is an error.
 */
import semver from 'semver'
import {stringify} from 'yaml'
import {KubeferryError} from '../oci/errors.js'
import {internalRepositories, type ConfigContext, type ConfigImage, type ConfigResult} from './context.js'

const CONTROL_PLANE = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy']

function lastComponent(repository: string): string {
  return repository.slice(repository.lastIndexOf('/') + 1)
}

function parent(registry: string, repository: string): string {
  const slash = repository.lastIndexOf('/')
  return slash < 0 ? registry : `${registry}/${repository.slice(0, slash)}`
}

/** v1beta4 from v1.31 on, v1beta3 from v1.22, v1beta2 before. */
export function kubeadmApiVersion(kubernetesVersion: string | undefined): string {
  const v = semver.coerce(kubernetesVersion ?? '')
  if (!v || semver.gte(v, '1.31.0')) return 'kubeadm.k8s.io/v1beta4'
  if (semver.gte(v, '1.22.0')) return 'kubeadm.k8s.io/v1beta3'
  return 'kubeadm.k8s.io/v1beta2'
}

function find(images: ConfigImage[], component: string): ConfigImage | undefined {
  return images.find((i) => lastComponent(i.repository) === component)
}

export function kubeadmFiles(ctx: ConfigContext): ConfigResult {
  const registry = ctx.serve ? undefined : ctx.destination.registry
  if (!registry) {
    throw new KubeferryError('INVALID_ARGUMENT', 'kubeadm config is for images pushed to a registry, not for --serve', {hint: 'with kubeferry serve keep kubeadm\'s default imageRepository: nodes reach serve through hosts.toml'})
  }
  const warnings: string[] = []
  const repoOf = (image: ConfigImage) => internalRepositories(ctx, image)
  // imageRepository: the parent of the control-plane images, which must all agree (kubeadm has one setting for them).
  const parents = new Set<string>()
  for (const component of CONTROL_PLANE) {
    const image = find(ctx.images, component)
    if (image) parents.add(parent(registry, repoOf(image)[0]))
  }
  parents.add(parent(registry, repoOf(ctx.pause)[0]))
  if (lastComponent(ctx.pause.repository) !== 'pause') warnings.push(`kubeadm expects its pause image at <imageRepository>/pause; the chosen sandbox image is ${ctx.pause.name}`)
  if (parents.size > 1) {
    throw new KubeferryError('CONFLICT', `kubeadm needs the control-plane images and pause under one imageRepository, but the name rules put them under ${[...parents].join(', ')}`, {hint: 'drop the --map rule that moves some of them, or move them all together'})
  }
  const imageRepository = [...parents][0]
  const config: Record<string, unknown> = {apiVersion: kubeadmApiVersion(ctx.kubernetesVersion), kind: 'ClusterConfiguration'}
  if (ctx.kubernetesVersion) config.kubernetesVersion = ctx.kubernetesVersion
  config.imageRepository = imageRepository

  const coredns = ctx.images.find((i) => lastComponent(i.repository) === 'coredns')
  if (coredns) {
    // Prefer a destination whose last component is `coredns` and whose parent kubeadm can name.
    const repos = repoOf(coredns)
    const candidates = repos.filter((r) => lastComponent(r) === 'coredns')
    // kubeadm's own choice with a custom imageRepository is <imageRepository>/coredns: prefer the name that matches it.
    const usable = candidates.find((r) => parent(registry, r) === imageRepository) ?? candidates[0]
    if (!usable) throw new KubeferryError('CONFLICT', `CoreDNS is pushed as ${repos.join(', ')}, but kubeadm can only find it at <repository>/coredns`, {hint: 'let its destination end in /coredns (--map … =dns/coredns)'})
    config.dns = {imageRepository: parent(registry, usable), ...(coredns.tag ? {imageTag: coredns.tag} : {})}
  }
  const etcd = find(ctx.images, 'etcd')
  if (etcd) config.etcd = {local: {imageRepository: parent(registry, repoOf(etcd)[0]), ...(etcd.tag ? {imageTag: etcd.tag} : {})}}

  const path = 'kubeadm-config.yaml'
  const comment = `${path}: use with \`kubeadm init --config ${path}\` (merge into your own ClusterConfiguration if you have one); pulls come from ${imageRepository}`
  const notes = [`kubeadm: \`kubeadm config images list --config ${path}\` must list exactly the pushed names`]
  return {files: [{path, comment, format: 'yaml', content: `# ${comment}\n${stringify(config)}`}], warnings, notes}
}
