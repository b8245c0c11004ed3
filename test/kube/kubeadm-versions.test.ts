/**
 * `kubeadm config images list` outputs, written out literally from sources outside this project's data (never
 * read from src/kube/data), each named next to its case. Where a source printed only part of the list or another
 * order, the case says which part it fixes and where the rest comes from.
 */
import test from 'ava'
import {resolveImageList} from '../../src/kube/resolve.js'

interface Case {
  version: string
  repository?: string
  expected: string[]
  source: string
}

function k8s(registry: string, v: string, tail: string[]): string[] {
  return [`${registry}/kube-apiserver:${v}`, `${registry}/kube-controller-manager:${v}`, `${registry}/kube-scheduler:${v}`, `${registry}/kube-proxy:${v}`, ...tail]
}

const CASES: Case[] = [
  // ---- k8s.gcr.io, coredns:<x> (before v1.21), order … pause, etcd, coredns
  {
    version: 'v1.16.7',
    expected: k8s('k8s.gcr.io', 'v1.16.7', ['k8s.gcr.io/pause:3.1', 'k8s.gcr.io/etcd:3.3.15-0', 'k8s.gcr.io/coredns:1.6.2']),
    source: 'github.com/seekplum/deploy roles/kubernetes/files/pull-images.sh ("# kubeadm config images list" for v1.16.7, same order)',
  },
  {
    version: 'v1.17.0',
    expected: k8s('k8s.gcr.io', 'v1.17.0', ['k8s.gcr.io/pause:3.1', 'k8s.gcr.io/etcd:3.4.3-0', 'k8s.gcr.io/coredns:1.6.5']),
    source: 'github.com/wutongci/scripts k8s/docker.sh (k8s.gcr.io names re-tagged for v1.17.0)',
  },
  {
    version: 'v1.18.0',
    expected: k8s('k8s.gcr.io', 'v1.18.0', ['k8s.gcr.io/pause:3.2', 'k8s.gcr.io/etcd:3.4.3-0', 'k8s.gcr.io/coredns:1.6.7']),
    source: 'kubernetes/minikube pkg/minikube/bootstrapper/images test data for v1.18.0 before commit 773fa66d3c ("use the same order as kubeadm config images list")',
  },
  {
    version: 'v1.19.0',
    expected: k8s('k8s.gcr.io', 'v1.19.0', ['k8s.gcr.io/pause:3.2', 'k8s.gcr.io/etcd:3.4.9-1', 'k8s.gcr.io/coredns:1.7.0']),
    source: 'public "hub-mirrors" list of kubeadm default images per release (GitHub code index id 17936243806), v1.19.0',
  },
  {
    version: 'v1.20.15',
    expected: k8s('k8s.gcr.io', 'v1.20.15', ['k8s.gcr.io/pause:3.2', 'k8s.gcr.io/etcd:3.4.13-0', 'k8s.gcr.io/coredns:1.7.0']),
    source: 'hub-mirrors list (index id 17936243806), v1.20.15',
  },
  // ---- k8s.gcr.io, coredns/coredns:v<x> (v1.21+)
  {
    version: 'v1.21.0',
    expected: k8s('k8s.gcr.io', 'v1.21.0', ['k8s.gcr.io/pause:3.4.1', 'k8s.gcr.io/etcd:3.4.13-0', 'k8s.gcr.io/coredns/coredns:v1.8.0']),
    source: 'kubernetes issue 101300 ("$ kubeadm config images list … k8s.gcr.io/coredns/coredns:v1.8.0") and hub-mirrors list v1.21.0',
  },
  {
    version: 'v1.21.3',
    expected: k8s('k8s.gcr.io', 'v1.21.3', ['k8s.gcr.io/pause:3.4.1', 'k8s.gcr.io/etcd:3.4.13-0', 'k8s.gcr.io/coredns/coredns:v1.8.0']),
    source: 'github.com/GaJiCaptain/k8s-and-rook-ceph-images README (docker pull list for v1.21.3)',
  },
  {
    version: 'v1.22.16',
    expected: k8s('k8s.gcr.io', 'v1.22.16', ['k8s.gcr.io/pause:3.5', 'k8s.gcr.io/etcd:3.5.0-0', 'k8s.gcr.io/coredns/coredns:v1.8.4']),
    source: 'hub-mirrors list v1.22.16; registry per cluster-api util/kubeadm GetDefaultRegistry ("version <= v1.22.16 return k8s.gcr.io")',
  },
  {
    version: 'v1.23.14',
    expected: k8s('k8s.gcr.io', 'v1.23.14', ['k8s.gcr.io/pause:3.6', 'k8s.gcr.io/etcd:3.5.5-0', 'k8s.gcr.io/coredns/coredns:v1.8.6']),
    source: 'hub-mirrors list v1.23.14; cluster-api GetDefaultRegistry (v1.23.0–v1.23.14 → k8s.gcr.io)',
  },
  {
    version: 'v1.24.8',
    expected: k8s('k8s.gcr.io', 'v1.24.8', ['k8s.gcr.io/pause:3.7', 'k8s.gcr.io/etcd:3.5.5-0', 'k8s.gcr.io/coredns/coredns:v1.8.6']),
    source: 'hub-mirrors list v1.24.8; cluster-api GetDefaultRegistry (v1.24.0–v1.24.8 → k8s.gcr.io)',
  },
  // ---- registry.k8s.io backports in the December 2022 patches (kubernetes PRs 113392/113393/113395)
  {
    version: 'v1.22.17',
    expected: k8s('registry.k8s.io', 'v1.22.17', ['registry.k8s.io/pause:3.5', 'registry.k8s.io/etcd:3.5.6-0', 'registry.k8s.io/coredns/coredns:v1.8.4']),
    source: 'hub-mirrors list v1.22.17; cluster-api GetDefaultRegistry (v1.22.17 → registry.k8s.io); kubernetes/website PR 38425',
  },
  {
    version: 'v1.23.15',
    expected: k8s('registry.k8s.io', 'v1.23.15', ['registry.k8s.io/pause:3.6', 'registry.k8s.io/etcd:3.5.6-0', 'registry.k8s.io/coredns/coredns:v1.8.6']),
    source: 'hub-mirrors list v1.23.15; v1.23.15 release note "Kubeadm: use the image registry registry.k8s.io instead of k8s.gcr.io" (PR 113393)',
  },
  {
    version: 'v1.24.9',
    expected: k8s('registry.k8s.io', 'v1.24.9', ['registry.k8s.io/pause:3.7', 'registry.k8s.io/etcd:3.5.6-0', 'registry.k8s.io/coredns/coredns:v1.8.6']),
    source: 'hub-mirrors list v1.24.9; cluster-api GetDefaultRegistry (v1.24.9 → registry.k8s.io)',
  },
  // ---- registry.k8s.io, order … pause, etcd, coredns until v1.28
  {
    version: 'v1.28.0',
    expected: k8s('registry.k8s.io', 'v1.28.0', ['registry.k8s.io/pause:3.9', 'registry.k8s.io/etcd:3.5.9-0', 'registry.k8s.io/coredns/coredns:v1.10.1']),
    source: 'a kubernetes 1.28 install guide ("[root@k8s-master01 ~]# kubeadm config images list", GitHub code index id 63212400732)',
  },
  {
    version: 'v1.28.4',
    expected: k8s('registry.k8s.io', 'v1.28.4', ['registry.k8s.io/pause:3.9', 'registry.k8s.io/etcd:3.5.9-0', 'registry.k8s.io/coredns/coredns:v1.10.1']),
    source: 'an offline-install guide ("# kubeadm config images list" output for v1.28.4, GitHub code index id 22624933243)',
  },
  // ---- v1.29+: coredns before pause and etcd (kubernetes PR 114534)
  {
    version: 'v1.29.0',
    expected: k8s('registry.k8s.io', 'v1.29.0', ['registry.k8s.io/coredns/coredns:v1.11.1', 'registry.k8s.io/pause:3.9', 'registry.k8s.io/etcd:3.5.10-0']),
    source: 'hub-mirrors list v1.29.0, and a crictl pull list for v1.29.0 in that order (GitHub code index id 32170541440)',
  },
  {
    version: 'v1.29.3',
    expected: k8s('registry.k8s.io', 'v1.29.3', ['registry.k8s.io/coredns/coredns:v1.11.1', 'registry.k8s.io/pause:3.9', 'registry.k8s.io/etcd:3.5.12-0']),
    source: '"[config/images] Pulled …" output of kubeadm config images pull v1.29.3 (GitHub code index id 49193363906)',
  },
  {
    version: 'v1.30.1',
    expected: k8s('registry.k8s.io', 'v1.30.1', ['registry.k8s.io/coredns/coredns:v1.11.1', 'registry.k8s.io/pause:3.9', 'registry.k8s.io/etcd:3.5.12-0']),
    source: 'a 1.30 install guide ("kubeadm config images list" v1.30.1, GitHub code index id 21384491046)',
  },
  {
    version: 'v1.31.6',
    expected: k8s('registry.k8s.io', 'v1.31.6', ['registry.k8s.io/coredns/coredns:v1.11.3', 'registry.k8s.io/pause:3.10', 'registry.k8s.io/etcd:3.5.15-0']),
    source: 'kubernetes/kubeadm issue 3164 ("# kubeadm config images list", kubeadm 1.31.6)',
  },
  // ---- custom repository: CoreDNS loses its coredns/ sub-path
  {
    version: 'v1.31.6',
    repository: 'my.repo',
    expected: k8s('my.repo', 'v1.31.6', ['my.repo/coredns:v1.11.3', 'my.repo/pause:3.10', 'my.repo/etcd:3.5.15-0']),
    source: 'kubernetes/kubeadm issue 3164 ("# kubeadm config images list --image-repository my.repo", kubeadm 1.31.6)',
  },
  {
    version: 'v1.16.7',
    repository: 'registry.cn-hangzhou.aliyuncs.com/google_containers',
    expected: k8s('registry.cn-hangzhou.aliyuncs.com/google_containers', 'v1.16.7', [
      'registry.cn-hangzhou.aliyuncs.com/google_containers/pause:3.1',
      'registry.cn-hangzhou.aliyuncs.com/google_containers/etcd:3.3.15-0',
      'registry.cn-hangzhou.aliyuncs.com/google_containers/coredns:1.6.2',
    ]),
    source: 'github.com/seekplum/deploy pull-images.sh pulls exactly these names from the aliyun mirror for v1.16.7',
  },
  {
    version: 'v1.21.1',
    repository: 'registry.company.xyz',
    expected: k8s('registry.company.xyz', 'v1.21.1', ['registry.company.xyz/pause:3.4.1', 'registry.company.xyz/etcd:3.4.13-0', 'registry.company.xyz/coredns/coredns:v1.8.0']),
    source: 'kubernetes PR 102502 release note: v1.21.0/v1.21.1 regression used coredns/coredns under a custom repository (kubeadm issue 2501)',
  },
  {
    version: 'v1.21.2',
    repository: 'registry.company.xyz',
    expected: k8s('registry.company.xyz', 'v1.21.2', ['registry.company.xyz/pause:3.4.1', 'registry.company.xyz/etcd:3.4.13-0', 'registry.company.xyz/coredns:v1.8.0']),
    source: 'kubernetes PR 102502 (fixed in v1.21.2: "kubeadm now will append the coredns image name instead of coredns/coredns")',
  },
  {
    version: 'v1.28.4',
    repository: 'harbor.local:8443/k8s',
    expected: k8s('harbor.local:8443/k8s', 'v1.28.4', ['harbor.local:8443/k8s/pause:3.9', 'harbor.local:8443/k8s/etcd:3.5.9-0', 'harbor.local:8443/k8s/coredns:v1.10.1']),
    source: 'kubeadm images.go GetDNSImage/GetPauseImage/GetEtcdImage rules (kubeadm images_test.go "foo.io/coredns:<tag>", "real.repo/etcd:…") applied to the v1.28.4 list above',
  },
]

for (const c of CASES) {
  test(`kubeadm ${c.version}${c.repository ? ` --image-repository ${c.repository}` : ''} (${c.source.slice(0, 60)}…)`, async (t) => {
    const list = await resolveImageList({kubernetesVersion: c.version, imageRepository: c.repository})
    t.deepEqual(
      list.entries.map((e) => e.name),
      c.expected,
      `source: ${c.source}`,
    )
    t.false(list.kubeadm!.derived)
    t.deepEqual(list.warnings, [])
  })
}

test('versions are accepted as 1.31.6, v1.31.6, and 1.31 = newest known patch', async (t) => {
  const a = await resolveImageList({kubernetesVersion: '1.31.6'})
  const b = await resolveImageList({kubernetesVersion: 'v1.31.6'})
  t.deepEqual(a.entries.map((e) => e.name), b.entries.map((e) => e.name))
  const minor = await resolveImageList({kubernetesVersion: '1.31'})
  const version = minor.kubeadm!.version
  t.regex(version, /^v1\.31\.\d+$/)
  t.true(Number(version.split('.')[2]) >= 14, 'v1.31.14 was published in 2025; 1.31 must pick at least that')
  t.is(minor.entries[0].name, `registry.k8s.io/kube-apiserver:${version}`)
})

test('roles follow kubeadm order and the tag replaces + with _', async (t) => {
  const list = await resolveImageList({kubernetesVersion: 'v1.30.1'})
  t.deepEqual(list.entries.map((e) => e.role), ['apiserver', 'controller-manager', 'scheduler', 'proxy', 'coredns', 'pause', 'etcd'])
  const legacy = await resolveImageList({kubernetesVersion: 'v1.27.4'})
  t.deepEqual(legacy.entries.map((e) => e.role), ['apiserver', 'controller-manager', 'scheduler', 'proxy', 'pause', 'etcd', 'coredns'])
  const build = await resolveImageList({kubernetesVersion: 'v1.30.1+rke2r1'})
  t.is(build.entries[0].name, 'registry.k8s.io/kube-apiserver:v1.30.1_rke2r1')
  t.is(build.entries[5].name, 'registry.k8s.io/pause:3.9')
})

test('a patch newer than the table is derived from its minor and marked, with a warning', async (t) => {
  const list = await resolveImageList({kubernetesVersion: 'v1.36.9'})
  t.true(list.kubeadm!.derived)
  t.true(list.entries.every((e) => e.derived === true))
  t.is(list.entries[0].name, 'registry.k8s.io/kube-apiserver:v1.36.9')
  t.regex(list.warnings.join('\n'), /v1\.36\.9 .*derived from v1\.36\.\d+/)
})

test('versions that never existed are errors naming the nearest known releases', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['v1.31.99', /v1\.31\.99 was never released: v1\.31 ended at v1\.31\.\d+ \(nearest known: v1\.31\.\d+, v1\.32\.0\)/],
    ['1.x', /invalid Kubernetes version "1\.x"/],
    ['v2.0.0', /Kubernetes v2\.0\.0 does not exist.*newest known v1\.\d+\.\d+/],
    ['v1.18.7', /v1\.18\.7 was never released \(nearest known: v1\.18\.6, v1\.18\.8\)/],
    ['v1.15.3', /older than this release table \(nearest known: v1\.16\.0\)/],
    ['v1.99.0', /newer than every release this table knows/],
  ]
  for (const [version, message] of cases) {
    const error = await t.throwsAsync(resolveImageList({kubernetesVersion: version}))
    t.regex(error!.message, message, version)
    t.is((error as {code?: string}).code, 'UNKNOWN_VERSION')
  }
})
