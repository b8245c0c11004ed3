import {readdir, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {parseAllDocuments} from 'yaml'
import {KubeferryError} from '../oci/errors.js'

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
    for (const item of object.items) collect(item, origin, out)
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

/**
 * Images of the Pod-bearing objects in Kubernetes YAML text (multi-document; `List` and `*List` items; Pod,
 * Deployment, DaemonSet, StatefulSet, ReplicaSet, ReplicationController, Job, CronJob, PodTemplate; containers,
 * initContainers, ephemeralContainers), in document order. Other kinds are ignored.
 */
export function scanManifestText(text: string, origin: string): ManifestImage[] {
  const docs = parseAllDocuments(text)
  const list = Array.isArray(docs) ? docs : [docs]
  const out: ManifestImage[] = []
  for (const doc of list) {
    if (doc.errors.length > 0) {
      const error = doc.errors[0]
      const line = error.linePos?.[0]?.line
      throw new KubeferryError('INVALID_ARGUMENT', `${origin}: invalid YAML${line ? ` at line ${line}` : ''}: ${error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`, {
        hint: 'fix the manifest (or render the chart with helm template first)',
      })
    }
    collect(doc.toJS(), origin, out)
  }
  return out
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    throw new KubeferryError('IO', `cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, {hint: 'check the path and its permissions', cause: error})
  }
}

async function yamlFilesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {withFileTypes: true})
  const files: string[] = []
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) files.push(...(await yamlFilesUnder(path)))
    else if (/\.ya?ml$/i.test(entry.name)) files.push(path)
  }
  return files
}

/** Scan a file, a directory (its *.yaml / *.yml files, recursively, in name order) or `-` (stdin text given by `readStdin`). */
export async function scanManifests(path: string, readStdin: () => Promise<string>): Promise<ManifestImage[]> {
  if (path === '-') return scanManifestText(await readStdin(), 'stdin')
  let isDir: boolean
  try {
    isDir = (await stat(path)).isDirectory()
  } catch (error) {
    throw new KubeferryError('IO', `cannot read manifests ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, {hint: 'give a YAML file, a directory of YAML files, or - for stdin', cause: error})
  }
  if (!isDir) return scanManifestText(await readText(path, 'manifests'), path)
  const out: ManifestImage[] = []
  for (const file of await yamlFilesUnder(path)) out.push(...scanManifestText(await readText(file, 'manifests'), file))
  return out
}
