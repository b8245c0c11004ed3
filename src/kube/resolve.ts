import {KubeferryError, isKubeferryError} from '../oci/errors.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {readImagesFile} from './images-file.js'
import type {KubeadmConfig} from './kubeadm-config.js'
import {kubeadmImages, type KubeadmOverrides} from './kubeadm-images.js'
import {resolveKubernetesVersion} from './kubernetes-version.js'
import type {ManifestImage} from './manifests.js'
import {resolveRuntimePause} from './runtime-pause.js'
import type {ImageEntry, ImageList, ImageRole} from './types.js'

export type {ImageEntry, ImageList, ImageRole, KubeadmSummary} from './types.js'

export interface ImageListOptions {
  /** `--kubernetes-version`: `v1.31.6`, `1.31.6`, `1.31`, `stable-1.31`. Overrides the config file's kubernetesVersion. */
  kubernetesVersion?: string
  /** `--image-repository`. Overrides the config file's imageRepository. */
  imageRepository?: string
  /** `--config`: path of a kubeadm config file. */
  configFile?: string
  /** A kubeadm config given as text (instead of a file). */
  configText?: string
  /** `--runtime` specs: `containerd@1.7`, `cri-o@1.30`, `docker@cri-dockerd`. */
  runtimes?: string[]
  /** `--image` references. */
  images?: string[]
  /** `--images-file` paths. */
  imagesFiles?: string[]
  /** `--from-manifests` paths (file, directory, or `-` for stdin). */
  manifests?: string[]
  /** Reads stdin for `--from-manifests -` (defaults to process.stdin). */
  readStdin?: () => Promise<string>
}

async function readProcessStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

class EntryList {
  readonly entries: ImageEntry[] = []
  private readonly byName = new Map<string, ImageEntry>()

  /** Adds an image, or records one more source on the entry with the same normalised reference. */
  add(input: string, role: ImageRole, source: string, options: {printed?: string; derived?: boolean} = {}): ImageEntry {
    let reference
    try {
      reference = parseReference(input)
    } catch (error) {
      if (isKubeferryError(error)) throw new KubeferryError(error.code, `${source}: ${error.message}`, {hint: error.hint})
      throw error
    }
    const key = formatReference(reference)
    const existing = this.byName.get(key)
    if (existing) {
      if (!existing.sources.includes(source)) existing.sources.push(source)
      return existing
    }
    const entry: ImageEntry = {reference, name: options.printed ?? key, role, source, sources: [source], ...(options.derived ? {derived: true} : {})}
    this.byName.set(key, entry)
    this.entries.push(entry)
    return entry
  }
}

/**
 * The images a cluster needs, offline: kubeadm's list for a Kubernetes version (with kubeadm's overrides), the
 * runtimes' default sandbox images, and extra images from flags, files and manifests — deduplicated by normalised
 * reference in that order. `create` calls this; the `images` command only renders it.
 */
export async function resolveImageList(options: ImageListOptions): Promise<ImageList> {
  const warnings: string[] = []
  const list = new EntryList()
  const result: ImageList = {entries: list.entries, warnings}

  let config: KubeadmConfig | undefined
  // The YAML parser is loaded only when there is YAML to read (it costs start-up time on every other run).
  if (options.configFile) config = await (await import('./kubeadm-config.js')).readKubeadmConfig(options.configFile)
  else if (options.configText !== undefined) config = (await import('./kubeadm-config.js')).parseKubeadmConfig(options.configText)
  if (config) warnings.push(...config.warnings)

  const versionInput = options.kubernetesVersion ?? config?.kubernetesVersion
  if (config && !versionInput) {
    throw new KubeferryError('INVALID_ARGUMENT', `${options.configFile ?? 'kubeadm config'} sets no kubernetesVersion`, {
      hint: 'set ClusterConfiguration.kubernetesVersion or pass --kubernetes-version (kubeadm would default to its own version)',
    })
  }

  let kubeadmPause: string | undefined
  if (versionInput) {
    const resolved = resolveKubernetesVersion(versionInput)
    warnings.push(...resolved.warnings)
    const overrides: KubeadmOverrides = {...config?.overrides}
    if (options.imageRepository) overrides.imageRepository = options.imageRepository
    const source = `kubeadm ${resolved.version}${resolved.derived ? ` (derived from v${resolved.release.version})` : ''}`
    for (const image of kubeadmImages(resolved.version, resolved.release, overrides)) {
      list.add(image.name, image.role, source, {printed: image.name, derived: resolved.derived})
      if (image.role === 'pause') kubeadmPause = image.name
    }
    result.kubeadm = {
      version: resolved.version,
      release: `v${resolved.release.version}`,
      derived: resolved.derived,
      imageRepository: overrides.imageRepository || resolved.release.registry,
      defaultImageRepository: resolved.release.registry,
    }
  } else if (options.imageRepository) {
    throw new KubeferryError('INVALID_ARGUMENT', '--image-repository needs a Kubernetes version', {hint: 'pass --kubernetes-version or --config'})
  }

  for (const spec of options.runtimes ?? []) {
    const runtime = resolveRuntimePause(spec)
    warnings.push(...runtime.warnings)
    list.add(runtime.image, 'sandbox', runtime.label)
    if (kubeadmPause && formatReference(parseReference(kubeadmPause)) !== formatReference(parseReference(runtime.image))) {
      warnings.push(
        `kubeadm ${result.kubeadm!.version} uses ${kubeadmPause} but ${runtime.runtime} ${runtime.version} defaults to ${runtime.image}: both are listed; to run one pause image set ${runtime.setting} = "${kubeadmPause}" in ${runtime.file}`,
      )
    }
  }

  const extras: ManifestImage[] = (options.images ?? []).map((image) => ({image, source: '--image'}))
  for (const file of options.imagesFiles ?? []) extras.push(...(await readImagesFile(file)))
  const readStdin = options.readStdin ?? readProcessStdin
  for (const path of options.manifests ?? []) extras.push(...(await (await import('./manifests.js')).scanManifests(path, readStdin, (warning) => warnings.push(warning))))
  for (const extra of extras) list.add(extra.image, 'extra', extra.source)

  if (list.entries.length === 0) {
    throw new KubeferryError('INVALID_ARGUMENT', 'nothing to list', {hint: 'pass --kubernetes-version, --config, --runtime, --image, --images-file or --from-manifests'})
  }
  return result
}
