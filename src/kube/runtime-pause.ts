import runtimeData from './data/runtime-pause.json' with {type: 'json'}
import {KubeferryError} from '../oci/errors.js'
import {compareSemVer, parseSemVer} from './release-table.js'

export type RuntimeName = 'containerd' | 'cri-o' | 'cri-dockerd'

/** Facts of one release series (`1.7`), read from its source; see scripts/gen-kube-data.mjs. */
interface SeriesFacts {
  series: string
  /** The configuration setting that overrides the default sandbox image. */
  setting: string
  /** containerd: the config version `containerd config default` writes. */
  configVersion?: number
  /** containerd: whether the CRI registry section has `config_path` (hosts.toml directories). */
  registryConfigPath?: boolean
}

interface RuntimeTable {
  name: RuntimeName
  source: {repository: string; commit: string; date: string}
  /** The node file the setting lives in. */
  file: string
  series: SeriesFacts[]
  /** `source` is where the default was read: `TAG:PATH:LINE FIELD`. */
  releases: Array<{version: string; sandboxImage: string; source: string}>
  /** Series the table leaves out, and why (a value that could not be read as an image from the source). */
  omitted: Array<{series: string; reason: string}>
}

const TABLES = (runtimeData as unknown as {runtimes: Record<RuntimeName, RuntimeTable>}).runtimes

const seriesOf = (version: string) => version.split('.').slice(0, 2).join('.')

/** The release series a runtime's table knows, oldest first (`1.4`, `1.5`, … for containerd). */
export function knownRuntimeSeries(runtime: RuntimeName): string[] {
  return TABLES[runtime].series.map((s) => s.series)
}

/** How to name each runtime on the command line, with every series its table knows. */
function knownSpecs(): string {
  return [
    `containerd@${knownRuntimeSeries('containerd').join('|')}`,
    `cri-o@${knownRuntimeSeries('cri-o').join('|')}`,
    `docker@cri-dockerd[@${knownRuntimeSeries('cri-dockerd').join('|')}]`,
  ].join(', ')
}

/** `--runtime` help text, generated from the tables so it lists every series they know. */
export function runtimeFlagDescription(): string {
  return `Add this runtime's default sandbox image (repeatable): ${knownSpecs()}, or an exact release such as containerd@1.7.22.`
}

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
  /** Where the default was read: `TAG:PATH:LINE FIELD` in the runtime's repository. */
  source: string
  /** containerd: the config version of that release's `containerd config default`. */
  configVersion?: number
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

function invalidSpec(spec: string, why: string, hint = `use RUNTIME@SERIES (${knownSpecs()}) or an exact release such as containerd@1.7.22`): KubeferryError {
  return new KubeferryError('INVALID_ARGUMENT', `invalid --runtime "${spec}": ${why}`, {hint})
}

/** Why a series is missing: left out of the table (with the reason) or not known at all. */
function unknownSeries(runtime: RuntimeName, want: string): string {
  const omitted = TABLES[runtime].omitted.find((o) => o.series === seriesOf(want))
  const known = `known series: ${knownRuntimeSeries(runtime).join(', ')}`
  if (omitted) return `${runtime} ${omitted.series} is not in the table: ${omitted.reason} (${known})`
  return `no ${runtime} release ${want} is known (${known})`
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
    if (matching.length === 0) throw invalidSpec(spec, unknownSeries(runtime, want), 'name one of the known series (its newest release is used) or an exact release of one')
  }
  const chosen = matching.reduce((a, b) => (compareSemVer(parseSemVer(a.version)!, parseSemVer(b.version)!) >= 0 ? a : b))
  const facts = table.series.find((s) => s.series === seriesOf(chosen.version))
  if (!facts) throw new Error(`runtime table: no series facts for ${runtime} ${chosen.version}`)
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
    setting: facts.setting,
    file: table.file,
    source: `${table.source.repository} ${chosen.source}`,
    ...(facts.configVersion === undefined ? {} : {configVersion: facts.configVersion}),
    label: `${runtime} ${chosen.version} default sandbox image`,
    warnings,
  }
}

export function runtimeTableSource(runtime: RuntimeName): {repository: string; commit: string; date: string} {
  return TABLES[runtime].source
}
