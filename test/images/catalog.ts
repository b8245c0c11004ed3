/** The names the test images carry: kubeadm's set for v1.31.6, the runtimes' pause images, a Docker Hub image. */

export type ImageFormat = 'docker' | 'oci'
/** What the host-arch platform of an image can run: a pause (sleeps forever) or a busybox shell. */
export type RunnableKind = 'pause' | 'busybox'

export interface ImageSpec {
  /** Canonical reference, e.g. registry.k8s.io/pause:3.10 */
  name: string
  format: ImageFormat
  runnable?: RunnableKind
}

/** `kubeadm config images list --kubernetes-version v1.31.6`, in kubeadm's order. */
export const KUBEADM_V1_31_6 = [
  'registry.k8s.io/kube-apiserver:v1.31.6',
  'registry.k8s.io/kube-controller-manager:v1.31.6',
  'registry.k8s.io/kube-scheduler:v1.31.6',
  'registry.k8s.io/kube-proxy:v1.31.6',
  'registry.k8s.io/coredns/coredns:v1.11.3',
  'registry.k8s.io/pause:3.10',
  'registry.k8s.io/etcd:3.5.15-0',
]

/**
 * `kubeadm config images list --kubernetes-version v1.31.0`: the release a v1.31.6 upgrade starts from (delta bundles,
 * issue 20). pause:3.10 and etcd:3.5.15-0 are the very same images in both; the others differ in their own (binary)
 * layer only and share the base layer, as real patch releases do.
 */
export const KUBEADM_V1_31_0 = [
  'registry.k8s.io/kube-apiserver:v1.31.0',
  'registry.k8s.io/kube-controller-manager:v1.31.0',
  'registry.k8s.io/kube-scheduler:v1.31.0',
  'registry.k8s.io/kube-proxy:v1.31.0',
  'registry.k8s.io/coredns/coredns:v1.11.1',
  'registry.k8s.io/pause:3.10',
  'registry.k8s.io/etcd:3.5.15-0',
]

/** Default sandbox images of common runtimes (containerd 1.6 → 3.6, 1.7 → 3.8, CRI-O/2.0 era → 3.9). */
export const RUNTIME_PAUSES = ['registry.k8s.io/pause:3.6', 'registry.k8s.io/pause:3.8', 'registry.k8s.io/pause:3.9']

export const DOCKER_HUB_IMAGES = ['docker.io/library/busybox:1.36']

/** The default test set; media types alternate (Docker list first, then OCI index, …). */
export function defaultImageSpecs(): ImageSpec[] {
  return [...KUBEADM_V1_31_6, ...RUNTIME_PAUSES, ...DOCKER_HUB_IMAGES].map((name, i) => ({
    name,
    format: i % 2 === 0 ? 'docker' : 'oci',
    ...(name.startsWith('registry.k8s.io/pause:') ? {runnable: 'pause' as const} : name.includes('/busybox:') ? {runnable: 'busybox' as const} : {}),
  }))
}

/** The v1.31.0 set, each image with the media type and role of its v1.31.6 counterpart (same position in kubeadm's list). */
export function kubeadmV1310Specs(): ImageSpec[] {
  const v1316 = defaultImageSpecs()
  return KUBEADM_V1_31_0.map((name, i) => ({...v1316[i], name}))
}

/** `count` tiny images for load tests: registry.k8s.io/kubeferry-many/image-0001:v1, … */
export function manyImageSpecs(count: number): ImageSpec[] {
  return Array.from({length: count}, (_, i) => ({
    name: `registry.k8s.io/kubeferry-many/image-${String(i + 1).padStart(4, '0')}:v1`,
    format: i % 2 === 0 ? ('docker' as const) : ('oci' as const),
  }))
}

/** Split a fully qualified `registry/repo/sitory:tag` (test names only, never a digest). */
export function splitName(name: string): {registry: string; repository: string; tag: string} {
  const slash = name.indexOf('/')
  const colon = name.lastIndexOf(':')
  if (slash < 0 || colon < slash) throw new Error(`test image name must be registry/repository:tag, got ${name}`)
  return {registry: name.slice(0, slash), repository: name.slice(slash + 1, colon), tag: name.slice(colon + 1)}
}
