/** The flags that say which images to carry, shared by `images` and `create`, and their mapping to the resolver. */
import * as Flags from '@oclif/core/flags'
import type {ImageListOptions} from '../kube/resolve.js'
import {runtimeFlagDescription} from '../kube/runtime-pause.js'

export const imageListFlags = {
  'kubernetes-version': Flags.string({description: 'Kubernetes version: v1.31.6, 1.31.6, or 1.31 (newest known patch).', helpValue: 'VERSION', helpGroup: 'IMAGES'}),
  'image-repository': Flags.string({description: 'Registry/prefix for the control plane images (kubeadm --image-repository).', helpValue: 'REPO', helpGroup: 'IMAGES'}),
  config: Flags.string({description: 'kubeadm configuration file (ClusterConfiguration v1beta2/v1beta3/v1beta4).', helpValue: 'FILE', helpGroup: 'IMAGES'}),
  runtime: Flags.string({
    description: runtimeFlagDescription(),
    multiple: true,
    helpValue: 'RUNTIME@VERSION',
    helpGroup: 'IMAGES',
  }),
  image: Flags.string({description: 'Add an image (repeatable).', multiple: true, helpValue: 'REF', helpGroup: 'IMAGES'}),
  'images-file': Flags.string({description: 'Add the images of a file, one per line, # comments (repeatable).', multiple: true, helpValue: 'FILE', helpGroup: 'IMAGES'}),
  'from-manifests': Flags.string({
    description: 'Add the images of Kubernetes YAML: a file, a directory of *.yaml/*.yml, or - for stdin (repeatable).',
    multiple: true,
    helpValue: 'PATH|-',
    helpGroup: 'IMAGES',
  }),
}

type ImageListFlagValues = {
  'kubernetes-version'?: string
  'image-repository'?: string
  config?: string
  runtime?: string[]
  image?: string[]
  'images-file'?: string[]
  'from-manifests'?: string[]
}

export function imageListOptions(flags: ImageListFlagValues): ImageListOptions {
  return {
    kubernetesVersion: flags['kubernetes-version'],
    imageRepository: flags['image-repository'],
    configFile: flags.config,
    runtimes: flags.runtime,
    images: flags.image,
    imagesFiles: flags['images-file'],
    manifests: flags['from-manifests'],
  }
}
