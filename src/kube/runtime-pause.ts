import runtimeData from './data/runtime-pause.json' with {type: 'json'}
import {KubeferryError} from '../oci/errors.js'
import {compareSemVer, parseSemVer} from './release-table.js'

export type RuntimeName = 'containerd' | 'cri-o' | 'cri-dockerd'

interface RuntimeTable {
  name: RuntimeName
  source: {repository: string; commit: string; date: string}
  /** Keyed by major version ("1", "2"; "0" for cri-dockerd). */
  settings: Record<string, {file: string; setting: string}>
  releases: Array<{version: string; sandboxImage: string}>
}

const TABLES = (runtimeData as unknown as {runtimes: Record<RuntimeName, RuntimeTable>}).runtimes

export interface RuntimePause {
  runtime: RuntimeName
  /** As asked, e.g. `containerd@1.7`. */
  spec: string
  /** The release whose default applies (`1.7.30`). */
  version: string
  /** Default sandbox image of that release. */
  image: string
  /** The configuration setting that overrides it, e.g. `[crio.image] pause_image`. */
  setting: string
  file: string
  /** E.g. `containerd 1.7.30 default sandbox image`. */
  label: string
  warnings: string[]
}

const ALIASES: Record<string, RuntimeName> = {
  containerd: 'containerd',
  'cri-o': 'cri-o',
  crio: 'cri-o',
  'cri-dockerd': 'cri-dockerd',
  docker: 'cri-dockerd',
}

function invalidSpec(spec: string, why: string): KubeferryError {
  return new KubeferryError('INVALID_ARGUMENT', `invalid --runtime "${spec}": ${why}`, {
    hint: 'use RUNTIME@VERSION: containerd@1.6, containerd@1.7, containerd@2.0, containerd@2.1, cri-o@1.30, docker@cri-dockerd (or an exact release such as containerd@1.7.22)',
  })
}

/**
 * `containerd@1.7` (newest known 1.7 patch), `containerd@1.6.8` (exact), `cri-o@1.30`, `docker@cri-dockerd`,
 * `cri-dockerd@0.3.9`, or a bare runtime name (its newest release) → that runtime's default sandbox image.
 */
export function resolveRuntimePause(spec: string): RuntimePause {
  const text = spec.trim()
  let [name, version] = text.split('@', 2) as [string, string | undefined]
  name = name.toLowerCase()
  if (name === 'docker') {
    // docker@cri-dockerd[@x.y.z]: Kubernetes talks to docker only through cri-dockerd.
    const rest = text.split('@').slice(1)
    if (rest.length > 0 && rest[0].toLowerCase() !== 'cri-dockerd') throw invalidSpec(spec, 'docker is used by Kubernetes only through cri-dockerd (docker@cri-dockerd)')
    version = rest[1]
  }
  const runtime = ALIASES[name]
  if (!runtime) throw invalidSpec(spec, `unknown runtime "${name}" (known: containerd, cri-o, docker@cri-dockerd)`)
  const table = TABLES[runtime]
  const releases = table.releases
  const want = (version ?? '').replace(/^v/, '')
  let matching = releases
  if (want !== '') {
    if (!/^\d+(\.\d+){0,2}$/.test(want)) throw invalidSpec(spec, `"${version}" is not a version`)
    matching = releases.filter((r) => r.version === want || r.version.startsWith(`${want}.`))
    if (matching.length === 0) {
      const known = [...new Set(releases.map((r) => r.version.split('.').slice(0, 2).join('.')))]
      throw invalidSpec(spec, `no ${runtime} release ${want} is known (known series: ${known.join(', ')})`)
    }
  }
  const chosen = matching.reduce((a, b) => (compareSemVer(parseSemVer(a.version)!, parseSemVer(b.version)!) >= 0 ? a : b))
  const major = chosen.version.split('.')[0]
  const setting = table.settings[major] ?? Object.values(table.settings)[0]
  const warnings: string[] = []
  const others = [...new Set(matching.filter((r) => r.sandboxImage !== chosen.sandboxImage).map((r) => r.sandboxImage))]
  for (const other of others) {
    const users = matching.filter((r) => r.sandboxImage === other).map((r) => r.version)
    warnings.push(
      `${runtime} ${users[0]}${users.length > 1 ? `–${users.at(-1)}` : ''} default to ${other}, not ${chosen.sandboxImage} (used for ${spec}): name the exact release (${runtime === 'cri-dockerd' ? 'docker@cri-dockerd@' : `${name}@`}${users.at(-1)}) if nodes run it`,
    )
  }
  return {
    runtime,
    spec: text,
    version: chosen.version,
    image: chosen.sandboxImage,
    setting: setting.setting,
    file: setting.file,
    label: `${runtime} ${chosen.version} default sandbox image`,
    warnings,
  }
}

export function runtimeTableSource(runtime: RuntimeName): {repository: string; commit: string; date: string} {
  return TABLES[runtime].source
}
