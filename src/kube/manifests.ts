import {readdir, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {KubeferryError} from '../oci/errors.js'
import {decodeManifestStream} from './manifest-stream.js'

/** An image found in Kubernetes YAML, with where it was found. */
export interface ManifestImage {
  image: string
  /** `deploy.yaml: Deployment web/api, initContainer migrate` */
  source: string
}

type Obj = Record<string, unknown>

const POD_TEMPLATE_KINDS = new Set(['Deployment', 'DaemonSet', 'StatefulSet', 'ReplicaSet', 'ReplicationController', 'Job'])
const CONTAINER_FIELDS: Array<[string, string]> = [
  ['initContainers', 'initContainer'],
  ['containers', 'container'],
  ['ephemeralContainers', 'ephemeralContainer'],
]

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function get(value: unknown, ...path: string[]): unknown {
  let current = value
  for (const key of path) {
    if (!isObj(current)) return undefined
    current = current[key]
  }
  return current
}

function podSpecOf(object: Obj): unknown {
  const kind = object.kind
  if (kind === 'Pod') return object.spec
  if (kind === 'CronJob') return get(object, 'spec', 'jobTemplate', 'spec', 'template', 'spec')
  if (kind === 'PodTemplate') return get(object, 'template', 'spec')
  if (typeof kind === 'string' && POD_TEMPLATE_KINDS.has(kind)) return get(object, 'spec', 'template', 'spec')
  return undefined
}

function describe(object: Obj): string {
  const name = get(object, 'metadata', 'name')
  const namespace = get(object, 'metadata', 'namespace')
  return `${String(object.kind)} ${typeof namespace === 'string' ? `${namespace}/` : ''}${typeof name === 'string' ? name : '(unnamed)'}`
}

function collect(object: unknown, origin: string, out: ManifestImage[]): void {
  if (!isObj(object)) return
  if (typeof object.kind === 'string' && object.kind.endsWith('List') && Array.isArray(object.items)) {
    // Items of a typed list (PodList, DeploymentList from the API) carry no kind: kubectl gives them the list's kind
    // without "List" when they have neither kind nor apiVersion (apimachinery unstructured helpers.go).
    const itemKind = object.kind.slice(0, -'List'.length)
    for (const item of object.items) {
      const inherits = isObj(item) && item.kind === undefined && item.apiVersion === undefined && itemKind !== ''
      collect(inherits ? {...item, kind: itemKind} : item, origin, out)
    }
    return
  }
  const spec = podSpecOf(object)
  if (!isObj(spec)) return
  for (const [field, label] of CONTAINER_FIELDS) {
    const containers = spec[field]
    if (!Array.isArray(containers)) continue
    for (const container of containers) {
      if (!isObj(container)) continue
      const where = `${origin}: ${describe(object)}, ${label} ${typeof container.name === 'string' ? container.name : '(unnamed)'}`
      if (typeof container.image !== 'string' || container.image.trim() === '') {
        throw new KubeferryError('INVALID_ARGUMENT', `${where} has no image`, {hint: 'render the manifests fully (helm template …) before scanning them'})
      }
      out.push({image: container.image.trim(), source: where})
    }
  }
}

/** Called with each warning about the input (a duplicated key, …); the default drops them. */
export type ManifestWarn = (message: string) => void

/**
 * Images of the Pod-bearing objects in Kubernetes manifests as kubectl reads them (YAML documents, or a stream of
 * JSON objects; see manifest-stream.ts): `List` and `*List` items; Pod, Deployment, DaemonSet, StatefulSet,
 * ReplicaSet, ReplicationController, Job, CronJob, PodTemplate; containers, initContainers, ephemeralContainers),
 * in document order. Other kinds are ignored.
 */
export function scanManifestText(text: string, origin: string, warn: ManifestWarn = () => {}): ManifestImage[] {
  const decoded = decodeManifestStream(text, origin)
  for (const warning of decoded.warnings) warn(warning)
  const out: ManifestImage[] = []
  for (const doc of decoded.documents) collect(doc.value, origin, out)
  return out
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    throw new KubeferryError('IO', `cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, {hint: 'check the path and its permissions', cause: error})
  }
}

/** kubectl -f DIR reads *.json, *.yaml and *.yml (this goes into subdirectories too, as kubectl -R does). */
async function manifestFilesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {withFileTypes: true})
  const files: string[] = []
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) files.push(...(await manifestFilesUnder(path)))
    else if (/\.(ya?ml|json)$/i.test(entry.name)) files.push(path)
  }
  return files
}

/** Scan a file, a directory (its *.yaml / *.yml / *.json files, recursively, in name order) or `-` (stdin text given by `readStdin`). */
export async function scanManifests(path: string, readStdin: () => Promise<string>, warn: ManifestWarn = () => {}): Promise<ManifestImage[]> {
  if (path === '-') return scanManifestText(await readStdin(), 'stdin', warn)
  let isDir: boolean
  try {
    isDir = (await stat(path)).isDirectory()
  } catch (error) {
    throw new KubeferryError('IO', `cannot read manifests ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, {hint: 'give a YAML or JSON file, a directory of them, or - for stdin', cause: error})
  }
  if (!isDir) return scanManifestText(await readText(path, 'manifests'), path, warn)
  const out: ManifestImage[] = []
  for (const file of await manifestFilesUnder(path)) out.push(...scanManifestText(await readText(file, 'manifests'), file, warn))
  return out
}
