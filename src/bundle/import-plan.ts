/**
 * "What to import for platform P": ONE description that both `install.sh` (as embedded data lines) and `kubeferry load`
 * use, so the two cannot drift. Also the facts both share: uname → OCI platform, the pin label, where runtimes are
 * looked for, exit codes, and the wording of the summary line.
 */
import {KubeferryError} from '../oci/errors.js'
import type {Digest} from '../oci/digest.js'
import {digestHex} from '../oci/digest.js'
import {formatPlatform, normalizePlatform, parsePlatform} from '../oci/platform.js'
import {dockerFragmentPath, type BundleImage, type BundleMetadata} from './layout.js'

/** containerd's CRI keeps images with this label through kubelet image GC. */
export const PIN_LABEL_KEY = 'io.cri-containerd.pinned'
export const PIN_LABEL_VALUE = 'pinned'
export const DEFAULT_NAMESPACE = 'k8s.io'

/** Exit codes shared by install.sh and `kubeferry load`. */
export const EXIT = {
  ok: 0,
  failed: 1, // an image is missing or has the wrong digest after import, or the runtime refused the import
  usage: 2,
  noRuntime: 3,
  badBundle: 4, // checksum or structure check failed
  noPlatform: 5, // the bundle does not hold the node's platform
  noSpace: 6,
  missingBase: 7, // a delta bundle: the runtime does not hold what it relies on (or the delta is for push only)
} as const

/** `uname -m` → OCI platform (linux). */
export const UNAME_PLATFORMS: Record<string, string> = {
  x86_64: 'linux/amd64',
  amd64: 'linux/amd64',
  aarch64: 'linux/arm64',
  arm64: 'linux/arm64',
  armv8l: 'linux/arm/v7',
  armv7l: 'linux/arm/v7',
  armv6l: 'linux/arm/v6',
  i386: 'linux/386',
  i686: 'linux/386',
  ppc64le: 'linux/ppc64le',
  s390x: 'linux/s390x',
  riscv64: 'linux/riscv64',
  mips64: 'linux/mips64le',
  loongarch64: 'linux/loong64',
}

/** Where auto-detection looks, in order (the script and `detect.ts` both follow this list). */
export const RUNTIME_SOCKETS = {
  k3s: '/run/k3s/containerd/containerd.sock',
  containerd: '/run/containerd/containerd.sock',
  crio: '/run/crio/crio.sock',
  docker: '/var/run/docker.sock',
  rke2Ctr: '/var/lib/rancher/rke2/bin/ctr',
  kubeletFlags: '/var/lib/kubelet/kubeadm-flags.env',
  kubeletConfig: '/var/lib/kubelet/config.yaml',
}

export const RUNTIMES = ['auto', 'containerd', 'k3s', 'rke2', 'docker', 'podman', 'nerdctl', 'cri-o'] as const
export type RuntimeName = (typeof RUNTIMES)[number]

export interface PlanBlob {
  digest: Digest
  size: number
}

export interface PlanImage {
  name: string
  /** Upstream digest of what the name points to (index or manifest): what containerd shows. */
  digest: Digest
  /** Digest of this platform's manifest. */
  platformDigest: Digest
  /** Config digest: docker's image ID. */
  configDigest: Digest
  role?: string
  /** Sandbox (pause) images get pinned on containerd. */
  pin: boolean
}

export interface ImportPlan {
  platform: string
  images: PlanImage[]
  /** Every blob this platform needs (index, manifest, config, layers), deduplicated. */
  blobs: PlanBlob[]
  /** Sum of `blobs` sizes. */
  bytes: number
  /** Where `docker load` reads this platform: the bundle itself, or bundle + fragment. */
  docker: {source: 'root'} | {source: 'fragment'; path: string}
  /** A delta bundle: the layers this platform's images need that the bundle does not carry (the runtime must hold them). */
  relies: PlanRelied[]
}

/** One use of a relied-on layer: containerd needs the blob (`digest`), docker/podman the layer chain (`chainId`). */
export interface PlanRelied {
  image: string
  digest: Digest
  chainId: string
}

export function canonicalPlatform(text: string): string {
  return formatPlatform(normalizePlatform(parsePlatform(text)))
}

export function platformFromUname(machine: string): string | undefined {
  return UNAME_PLATFORMS[machine.trim()]
}

export function isSandboxImage(image: Pick<BundleImage, 'role'>): boolean {
  return image.role === 'pause' || image.role === 'sandbox'
}

/** Throws when the bundle does not hold `platform` (this node's). */
export function assertPlatformHeld(meta: Pick<BundleMetadata, 'platforms'>, platform: string): void {
  const wanted = canonicalPlatform(platform)
  const held = meta.platforms.map(canonicalPlatform)
  if (!held.includes(wanted)) {
    throw new KubeferryError('NOT_FOUND', `the bundle holds ${held.join(', ')} but not ${wanted} (this node's platform); nothing was imported`, {
      hint: `build a bundle with \`kubeferry create --platform ${wanted}\` (or add it to --platform)`,
      exitCode: EXIT.noPlatform,
    })
  }
}

/** The plan for `platform`; throws when the bundle does not hold it. */
export function planImport(meta: BundleMetadata, platform: string): ImportPlan {
  assertPlatformHeld(meta, platform)
  const wanted = canonicalPlatform(platform)
  const images: PlanImage[] = []
  const blobs = new Map<Digest, number>()
  for (const image of meta.images) {
    const p = image.platforms.find((candidate) => canonicalPlatform(candidate.platform) === wanted)
    if (!p) continue
    images.push({name: image.name, digest: image.digest, platformDigest: p.digest, configDigest: p.config.digest, role: image.role, pin: isSandboxImage(image)})
    if (image.digest !== p.digest) blobs.set(image.digest, image.size)
    blobs.set(p.digest, p.size)
    blobs.set(p.config.digest, p.config.size)
    for (const layer of p.layers) blobs.set(layer.digest, layer.size)
  }
  const relies: PlanRelied[] = []
  for (const blob of meta.delta?.relies ?? []) {
    for (const use of blob.usedBy) if (canonicalPlatform(use.platform) === wanted) relies.push({image: use.image, digest: blob.digest, chainId: use.chainId})
    blobs.delete(blob.digest) // not in the bundle: the runtime holds it
  }
  const blobList = [...blobs].map(([digest, size]) => ({digest, size}))
  return {
    relies,
    platform: wanted,
    images,
    blobs: blobList,
    bytes: blobList.reduce((sum, b) => sum + b.size, 0),
    docker: canonicalPlatform(meta.dockerPlatform) === wanted ? {source: 'root'} : {source: 'fragment', path: dockerFragmentPath(wanted)},
  }
}

/** Images the bundle does not hold for `platform` (they are reported as missing, never silently dropped). */
export function imagesLackingPlatform(meta: BundleMetadata, platform: string): string[] {
  const wanted = canonicalPlatform(platform)
  return meta.images.filter((image) => !image.platforms.some((p) => canonicalPlatform(p.platform) === wanted)).map((image) => image.name)
}

/** The bundle's sandbox images, kubeadm's first: what preflight suggests for a runtime's sandbox setting. */
export function sandboxImages(meta: BundleMetadata): string[] {
  const pauses = meta.images.filter(isSandboxImage)
  const kubeadm = pauses.filter((image) => (image.sources ?? []).some((s) => s.startsWith('kubeadm')))
  return [...kubeadm, ...pauses.filter((image) => !kubeadm.includes(image))].map((image) => image.name)
}

/**
 * The plan as data lines for install.sh (fields separated by `|`, which no reference or digest contains):
 *   platform|<os/arch>|<bytes>|<docker source: "-" for the bundle itself, else the fragment path>
 *   image|<os/arch>|<name>|<digest>|<platform manifest digest>|<config digest>|<pin 0/1>|<role>
 *   blob|<os/arch>|<hex>|<size>
 *   sandbox|<name>
 */
export function renderPlanData(meta: BundleMetadata): string[] {
  const lines: string[] = []
  for (const platform of meta.platforms.map(canonicalPlatform)) {
    const plan = planImport(meta, platform)
    lines.push(['platform', platform, String(plan.bytes), plan.docker.source === 'root' ? '-' : plan.docker.path].join('|'))
    for (const image of plan.images) {
      lines.push(['image', platform, image.name, image.digest, image.platformDigest, image.configDigest, image.pin ? '1' : '0', image.role ?? '-'].join('|'))
    }
    for (const blob of plan.blobs) lines.push(['blob', platform, digestHex(blob.digest), String(blob.size)].join('|'))
    for (const r of plan.relies) lines.push(['relies', platform, r.image, digestHex(r.digest), digestHex(r.chainId as Digest)].join('|'))
  }
  if (meta.delta) lines.push(['delta', meta.delta.base.kind, meta.delta.for.join(',')].join('|'))
  for (const name of sandboxImages(meta)) lines.push(`sandbox|${name}`)
  for (const line of lines) {
    if (/[\n'\\`$]/.test(line)) throw new KubeferryError('BUNDLE_INVALID', `unsafe character in bundle metadata: ${JSON.stringify(line)}`)
  }
  return lines
}

export interface ImportCounts {
  images: number
  imported: number
  present: number
  missing: number
  pinned: number
}

/** The last line both install.sh and `kubeferry load` print (kept byte-identical; a test compares them). */
export function summaryLine(platform: string, runtime: string, c: ImportCounts): string {
  return `summary: ${platform} into ${runtime}: ${c.images} images, ${c.imported} imported, ${c.present} already present, ${c.missing} missing, ${c.pinned} pinned`
}
