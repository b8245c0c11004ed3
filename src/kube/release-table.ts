import kubeadmData from './data/kubeadm-releases.json' with {type: 'json'}

/** One row of data/kubeadm-releases.json: what kubeadm of that release lists by default. */
export interface KubeadmRelease {
  version: string
  /** kubeadm's DefaultImageRepository for that release. */
  registry: string
  coredns: string
  /** `coredns/coredns` (v1.21+) or `coredns`: the path under the default repository. */
  corednsPath: 'coredns' | 'coredns/coredns'
  etcd: string
  pause: string
  /** Print order: `legacy` = … kube-proxy, pause, etcd, coredns; `dnsFirst` (v1.29+) = … kube-proxy, coredns, pause, etcd. */
  order: 'legacy' | 'dnsFirst'
  /** v1.21.0–v1.21.1 only: `coredns/coredns` under a custom repository too (regression fixed in v1.21.2). */
  corednsNestedUnderAnyRepository?: boolean
}

export interface KubeadmTable {
  releases: KubeadmRelease[]
  prereleases: KubeadmRelease[]
  /** Published releases whose kubeadm output is not in the table yet (their images are derived). */
  releasedWithoutImages: string[]
  source: {repository: string; path: string; commit: string; date: string}
}

export const KUBEADM_TABLE: KubeadmTable = kubeadmData as KubeadmTable

export interface SemVer {
  major: number
  minor: number
  patch: number
  pre?: string
  build?: string
}

export function parseSemVer(text: string): SemVer | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$/.exec(text)
  if (!m) return undefined
  return {major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), ...(m[4] ? {pre: m[4]} : {}), ...(m[5] ? {build: m[5]} : {})}
}

export function compareSemVer(a: SemVer, b: SemVer): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch || comparePre(a.pre, b.pre)
}

function comparePre(a?: string, b?: string): number {
  if (a === b) return 0
  if (a === undefined) return 1
  if (b === undefined) return -1
  const pa = a.split('.')
  const pb = b.split('.')
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if (pa[i] === undefined) return -1
    if (pb[i] === undefined) return 1
    const na = /^\d+$/.test(pa[i]) ? Number(pa[i]) : NaN
    const nb = /^\d+$/.test(pb[i]) ? Number(pb[i]) : NaN
    if (!Number.isNaN(na) && !Number.isNaN(nb)) {
      if (na !== nb) return na - nb
    } else if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1
  }
  return 0
}

export function formatSemVer(v: SemVer, options: {build?: boolean} = {}): string {
  return `${v.major}.${v.minor}.${v.patch}${v.pre ? `-${v.pre}` : ''}${options.build !== false && v.build ? `+${v.build}` : ''}`
}
