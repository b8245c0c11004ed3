import type {KubeadmRelease} from './release-table.js'
import type {ImageRole} from './types.js'

/** The fields of a ClusterConfiguration (or flags) that change kubeadm's image list. */
export interface KubeadmOverrides {
  /** `imageRepository` / `--image-repository`. */
  imageRepository?: string
  /** `dns.imageRepository` */
  dnsImageRepository?: string
  /** `dns.imageTag` */
  dnsImageTag?: string
  /** `etcd.local.imageRepository` */
  etcdImageRepository?: string
  /** `etcd.local.imageTag` */
  etcdImageTag?: string
  /** `etcd.external` is set: kubeadm lists no etcd image. */
  externalEtcd?: boolean
  /** v1beta4 `dns.disabled` */
  dnsDisabled?: boolean
  /** v1beta4 `proxy.disabled` */
  proxyDisabled?: boolean
}

export interface KubeadmImage {
  role: ImageRole
  /** Exactly as `kubeadm config images list` prints it. */
  name: string
}

const KUBERNETES_IMAGES: Array<[ImageRole, string]> = [
  ['apiserver', 'kube-apiserver'],
  ['controller-manager', 'kube-controller-manager'],
  ['scheduler', 'kube-scheduler'],
  ['proxy', 'kube-proxy'],
]

/** kubeadmutil.KubernetesVersionToImageTag: the version with "+" replaced by "_". */
export function kubernetesImageTag(version: string): string {
  return (version.startsWith('v') ? version : `v${version}`).replace(/\+/g, '_')
}

/**
 * kubeadm's GetControlPlaneImages for `release`, asked for `version` (with leading v). Follows images.go:
 * the CoreDNS image gets the extra `/coredns` path only when its repository is the release's default
 * repository (v1.21+), so a custom repository expects `<repo>/coredns:<tag>`.
 */
export function kubeadmImages(version: string, release: KubeadmRelease, overrides: KubeadmOverrides = {}): KubeadmImage[] {
  const repo = trimRepo(overrides.imageRepository) || release.registry
  const tag = kubernetesImageTag(version)
  const images: KubeadmImage[] = []
  for (const [role, name] of KUBERNETES_IMAGES) {
    if (role === 'proxy' && overrides.proxyDisabled) continue
    images.push({role, name: `${repo}/${name}:${tag}`})
  }

  let dnsRepo = trimRepo(overrides.dnsImageRepository) || repo
  if (release.corednsPath === 'coredns/coredns' && (dnsRepo === release.registry || release.corednsNestedUnderAnyRepository)) dnsRepo = `${dnsRepo}/coredns`
  const dns: KubeadmImage | undefined = overrides.dnsDisabled ? undefined : {role: 'coredns', name: `${dnsRepo}/coredns:${overrides.dnsImageTag || release.coredns}`}
  const pause: KubeadmImage = {role: 'pause', name: `${repo}/pause:${release.pause}`}
  const etcdRepo = trimRepo(overrides.etcdImageRepository) || repo
  const etcd: KubeadmImage | undefined = overrides.externalEtcd ? undefined : {role: 'etcd', name: `${etcdRepo}/etcd:${overrides.etcdImageTag || release.etcd}`}

  const tail = release.order === 'dnsFirst' ? [dns, pause, etcd] : [pause, etcd, dns]
  for (const image of tail) if (image) images.push(image)
  return images
}

function trimRepo(repo: string | undefined): string {
  return (repo ?? '').trim().replace(/\/+$/, '')
}
