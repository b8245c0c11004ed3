import {KubeferryError} from '../oci/errors.js'
import {compareSemVer, formatSemVer, KUBEADM_TABLE, parseSemVer, type KubeadmRelease, type KubeadmTable, type SemVer} from './release-table.js'

/** How many minors below the newest GA minor still get patch releases (Kubernetes supports three minors). */
const MAINTAINED_MINORS_BELOW_NEWEST = 2
/** A derived patch may be at most this far past the newest known one (roughly a year of monthly patches). */
const MAX_DERIVED_PATCH_DISTANCE = 12

export interface ResolvedKubernetesVersion {
  /** The version as kubeadm takes it, with the leading `v` (`v1.31.6`, `v1.31.6+k3s1`). */
  version: string
  /** The table row whose facts apply. */
  release: KubeadmRelease
  /** True when `version` is not itself in the table and its images follow the rules of its minor. */
  derived: boolean
  warnings: string[]
}

function v(text: string): string {
  return `v${text}`
}

function unknown(message: string, hint: string): KubeferryError {
  return new KubeferryError('UNKNOWN_VERSION', message, {hint})
}

function rangeHint(table: KubeadmTable): string {
  return `known releases: ${v(table.releases[0].version)} … ${v(table.releases.at(-1)!.version)}`
}

/**
 * Resolve `1.31.6`, `v1.31.6`, `1.31` (newest known patch), `stable-1.31`, `stable` against the release table.
 * A patch newer than the table in a maintained minor (or any version of a minor known only from pre-releases) is
 * derived from the newest row of its minor, with a warning. Anything else that is not in the table is an error
 * naming the nearest known releases.
 */
export function resolveKubernetesVersion(input: string, table: KubeadmTable = KUBEADM_TABLE): ResolvedKubernetesVersion {
  const text = input.trim()
  const stable = /^stable(?:-(\d+)(?:\.(\d+))?)?$/.exec(text)
  if (stable) return resolveLabel(text, stable[1], stable[2], table)

  const minorOnly = /^v?(\d+)\.(\d+)$/.exec(text)
  if (minorOnly) return resolveMinor(Number(minorOnly[1]), Number(minorOnly[2]), text, table)

  const sv = parseSemVer(text)
  if (!sv) {
    throw unknown(`invalid Kubernetes version "${input}": expected v1.MINOR.PATCH or v1.MINOR, e.g. v1.31.6`, rangeHint(table))
  }
  checkMajorAndFloor(sv, input, table)

  const base = formatSemVer(sv, {build: false})
  const asked = v(formatSemVer(sv))
  const exact = (sv.pre ? table.prereleases : table.releases).find((r) => r.version === base)
  if (exact) {
    const warnings = sv.build ? [`${asked}: images use the tag ${asked.replace(/\+/g, '_')} (kubeadm replaces "+" with "_")`] : []
    return {version: asked, release: exact, derived: false, warnings}
  }
  return deriveOrReject(sv, asked, table)
}

function checkMajorAndFloor(sv: SemVer, input: string, table: KubeadmTable): void {
  const oldest = table.releases[0]
  const newest = table.releases.at(-1)!
  if (sv.major !== 1) {
    throw unknown(`Kubernetes ${input.startsWith('v') ? input : v(input)} does not exist: every Kubernetes release is v1.x (newest known ${v(newest.version)})`, rangeHint(table))
  }
  const oldestSv = parseSemVer(oldest.version)!
  if (sv.minor < oldestSv.minor) {
    throw unknown(`Kubernetes v${sv.major}.${sv.minor} is older than this release table (nearest known: ${v(oldest.version)})`, rangeHint(table))
  }
}

function minorRows(table: KubeadmTable, minor: number, pre = false): KubeadmRelease[] {
  return (pre ? table.prereleases : table.releases).filter((r) => parseSemVer(r.version)!.minor === minor)
}

function newestMinor(table: KubeadmTable): number {
  return parseSemVer(table.releases.at(-1)!.version)!.minor
}

function resolveMinor(major: number, minor: number, input: string, table: KubeadmTable): ResolvedKubernetesVersion {
  checkMajorAndFloor({major, minor, patch: 0}, input, table)
  const rows = minorRows(table, minor)
  if (rows.length > 0) return {version: v(rows.at(-1)!.version), release: rows.at(-1)!, derived: false, warnings: []}
  const pre = minorRows(table, minor, true)
  if (pre.length > 0) {
    throw unknown(`Kubernetes v1.${minor} has no release yet (newest pre-release known: ${v(pre.at(-1)!.version)})`, `ask for the pre-release exactly, or for v1.${newestMinor(table)} (newest ${v(table.releases.at(-1)!.version)})`)
  }
  throw unknown(`Kubernetes v1.${minor} is newer than every release this table knows (newest ${v(table.releases.at(-1)!.version)})`, rangeHint(table))
}

function resolveLabel(label: string, major: string | undefined, minor: string | undefined, table: KubeadmTable): ResolvedKubernetesVersion {
  if (major !== undefined && major !== '1') throw unknown(`version label "${label}" names no Kubernetes release (every release is v1.x)`, rangeHint(table))
  const resolved = minor === undefined ? {version: v(table.releases.at(-1)!.version), release: table.releases.at(-1)!, derived: false, warnings: []} : resolveMinor(1, Number(minor), label, table)
  resolved.warnings.push(`"${label}" resolved offline to ${resolved.version} (the newest release this table knows; kubeadm would ask dl.k8s.io)`)
  return resolved
}

function deriveOrReject(sv: SemVer, asked: string, table: KubeadmTable): ResolvedKubernetesVersion {
  const rows = minorRows(table, sv.minor)
  const preRows = minorRows(table, sv.minor, true)
  const top = newestMinor(table)

  if (rows.length === 0) {
    if (preRows.length > 0) {
      const from = preRows.at(-1)!
      return derived(asked, from, `${asked} is not in the release table; its images are derived from the newest known v1.${sv.minor} pre-release ${v(from.version)}`)
    }
    throw unknown(`Kubernetes ${asked} is newer than every release this table knows (newest ${v(table.releases.at(-1)!.version)})`, rangeHint(table))
  }

  const last = parseSemVer(rows.at(-1)!.version)!
  if (sv.pre) {
    // Pre-releases of a minor that has GA releases are not kept in the table; the GA rules of the minor apply.
    const from = rows[0]
    return derived(asked, from, `${asked} is a pre-release not kept in the release table; its images are derived from ${v(from.version)}`)
  }
  if (sv.patch < last.patch) {
    const below = [...rows].reverse().find((r) => parseSemVer(r.version)!.patch < sv.patch)
    const above = rows.find((r) => parseSemVer(r.version)!.patch > sv.patch)
    const nearest = [below, above].filter((r) => r !== undefined).map((r) => v(r.version))
    const patches = new Set(rows.map((r) => parseSemVer(r.version)!.patch))
    const skipped = Array.from({length: last.patch}, (_, p) => p).filter((p) => !patches.has(p))
    throw unknown(
      `Kubernetes ${asked} was never released (nearest known: ${nearest.join(', ')})`,
      `v1.${sv.minor} runs from ${v(rows[0].version)} to ${v(rows.at(-1)!.version)}; never published: ${skipped.map((p) => `v1.${sv.minor}.${p}`).join(', ')}`,
    )
  }

  const releasedUnlisted = table.releasedWithoutImages.includes(formatSemVer(sv, {build: false}))
  const maintained = sv.minor >= top - MAINTAINED_MINORS_BELOW_NEWEST
  if (releasedUnlisted || (maintained && sv.patch - last.patch <= MAX_DERIVED_PATCH_DISTANCE)) {
    const from = rows.at(-1)!
    const why = releasedUnlisted ? 'is a published release whose kubeadm image list is not in the table yet' : 'is newer than the release table'
    return derived(asked, from, `${asked} ${why}; its images are derived from ${v(from.version)} by the rules of v1.${sv.minor} (etcd, CoreDNS and pause as in ${v(from.version)})`)
  }
  const next = table.releases.find((r) => parseSemVer(r.version)!.minor === sv.minor + 1)
  const nearest = [v(rows.at(-1)!.version), ...(next ? [v(next.version)] : [])].join(', ')
  const why = maintained ? `is too far past the newest known v1.${sv.minor} release` : `was never released: v1.${sv.minor} ended at ${v(rows.at(-1)!.version)}`
  throw unknown(`Kubernetes ${asked} ${why} (nearest known: ${nearest})`, rangeHint(table))
}

function derived(asked: string, from: KubeadmRelease, warning: string): ResolvedKubernetesVersion {
  return {version: asked, release: from, derived: true, warnings: [warning]}
}

/** Every version the table knows, newest first (for help texts and errors). */
export function knownVersions(table: KubeadmTable = KUBEADM_TABLE): string[] {
  return table.releases.map((r) => v(r.version)).reverse()
}

export function compareVersions(a: string, b: string): number {
  return compareSemVer(parseSemVer(a)!, parseSemVer(b)!)
}
