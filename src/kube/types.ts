import type {Reference} from '../oci/reference.js'

/** What an image is for. The kubeadm roles follow `kubeadm config images list`. */
export type ImageRole =
  | 'apiserver'
  | 'controller-manager'
  | 'scheduler'
  | 'proxy'
  | 'coredns'
  | 'pause'
  | 'etcd'
  /** A container runtime's default sandbox (pause) image. */
  | 'sandbox'
  /** Anything given with --image, --images-file or found in manifests. */
  | 'extra'

export interface ImageEntry {
  reference: Reference
  /** The name as printed: exactly kubeadm's line for kubeadm images, the fully qualified reference otherwise. */
  name: string
  role: ImageRole
  /** Who asked for it first, e.g. `kubeadm v1.31.6`, `containerd 1.7.30 default sandbox image`, `--image`. */
  source: string
  /** Every source that asked for this same image (first one = `source`). */
  sources: string[]
  /** Set when the image comes from a kubeadm release derived from the rules of its minor, not from the table. */
  derived?: boolean
}

export interface KubeadmSummary {
  /** The version asked for, as kubeadm takes it (`v1.31.6`). */
  version: string
  /** Table row the images came from (`1.31.6`); differs from `version` when derived. */
  release: string
  derived: boolean
  imageRepository: string
  defaultImageRepository: string
}

export interface ImageList {
  entries: ImageEntry[]
  kubeadm?: KubeadmSummary
  warnings: string[]
}
