/** Step 1, plan: which images the bundle names and under which destination names each one goes. */
import type {BundleReader} from '../../bundle/reader.js'
import type {Reference} from '../../oci/reference.js'
import {listSourceImages, type NamedImage} from '../push-source.js'
import {planNames, type NameRules, type PushDestination} from '../rename.js'

/** One destination name of one bundle image (an image with an alias has two). */
export interface Place {
  image: NamedImage
  /** Position of the image in index.json's order. */
  index: number
  repository: string
  /** CoreDNS's kubeadm alias (a second name of the same image). */
  alias: boolean
  ref: Reference
  /** Destination reference as the operator reads it, e.g. `registry.corp:5000/k8s/pause:3.10`. */
  reference: string
}

/**
 * The images index.json names (only names: the manifests are read in step 2). When the bundle cannot even be
 * listed, the gate's own error (the bundle's verification), if it has one, says more.
 */
export async function listImages(reader: BundleReader, gate: Promise<unknown>): Promise<NamedImage[]> {
  try {
    return await listSourceImages(reader)
  } catch (error) {
    await gate
    throw error
  }
}

/** Every destination name: the renaming rules applied to each image, in index.json's order. */
export function planPlaces(named: NamedImage[], rules: NameRules, dest: PushDestination): Place[] {
  const names = planNames(named.map((i) => ({registry: i.ref.registry, repository: i.ref.repository, tag: i.ref.tag, name: i.name, digest: i.desc.digest})), rules)
  return names.flatMap((n, index) =>
    n.repositories.map((repository, j) => {
      const image = named[index]
      const ref: Reference = {registry: dest.registry, repository, ...(image.ref.tag ? {tag: image.ref.tag} : {digest: image.desc.digest})}
      return {image, index, repository, alias: j > 0, ref, reference: `${dest.registry}/${repository}${image.ref.tag ? `:${image.ref.tag}` : `@${image.desc.digest}`}`}
    }),
  )
}
