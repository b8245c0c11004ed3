/**
 * Default sandbox images as written in each runtime's source at its release tags:
 * containerd vendor/github.com/containerd/cri/pkg/config/config_unix.go (1.4) and pkg/cri/config/config_unix.go
 * (1.5–1.7) `SandboxImage`, internal/cri/config/config.go (2.x) `DefaultSandboxImage`; CRI-O lib/config.go,
 * lib/config/config.go, pkg/config/config.go `pauseImage`/`PauseImage`/`DefaultPauseImage`, pkg/config/config_linux.go
 * `DefaultPauseImage`; cri-dockerd core/sandbox_helpers.go `defaultSandboxImage`.
 */
import test from 'ava'
import runtimeData from '../../src/kube/data/runtime-pause.json' with {type: 'json'}
import {resolveImageList} from '../../src/kube/resolve.js'
import {knownRuntimeSeries, resolveRuntimePause, runtimeFlagDescription, type RuntimeName} from '../../src/kube/runtime-pause.js'

interface Row {
  version: string
  sandboxImage: string
  source: string
}
const TABLES = (runtimeData as unknown as {runtimes: Record<RuntimeName, {releases: Row[]; series: Array<{series: string}>}>}).runtimes
const SPEC_PREFIX: Record<RuntimeName, string> = {containerd: 'containerd@', 'cri-o': 'cri-o@', 'cri-dockerd': 'docker@cri-dockerd@'}
const seriesOf = (version: string) => version.split('.').slice(0, 2).join('.')

const DEFAULTS: Array<[string, string, RegExp]> = [
  // containerd 1.4 vendored containerd/cri: k8s.gcr.io/pause:3.2 at every 1.4 tag (v1.4.13 config_unix.go:59).
  ['containerd@1.4', 'k8s.gcr.io/pause:3.2', /^\[plugins\."io\.containerd\.grpc\.v1\.cri"\] sandbox_image$/],
  ['containerd@1.4.0', 'k8s.gcr.io/pause:3.2', /sandbox_image/],
  // containerd 1.5.0–1.5.13: k8s.gcr.io/pause:3.5; 1.5.14 moved to registry.k8s.io (commit a34a30b52).
  ['containerd@1.5.13', 'k8s.gcr.io/pause:3.5', /^\[plugins\."io\.containerd\.grpc\.v1\.cri"\] sandbox_image$/],
  ['containerd@1.5.0', 'k8s.gcr.io/pause:3.5', /sandbox_image/],
  ['containerd@1.5', 'registry.k8s.io/pause:3.5', /sandbox_image/],
  ['containerd@2.2', 'registry.k8s.io/pause:3.10.1', /pinned_images\] sandbox/],
  ['containerd@2.3', 'registry.k8s.io/pause:3.10.2', /^\[plugins\."io\.containerd\.cri\.v1\.images"\.pinned_images\] sandbox$/],
  ['cri-o@1.11', 'k8s.gcr.io/pause:3.1', /^\[crio\.image\] pause_image$/],
  ['cri-o@1.17', 'k8s.gcr.io/pause:3.1', /pause_image/],
  ['cri-o@1.36', 'registry.k8s.io/pause:3.10.1', /pause_image/],
  ['containerd@1.6', 'registry.k8s.io/pause:3.6', /\[plugins\."io\.containerd\.grpc\.v1\.cri"\] sandbox_image/],
  ['containerd@1.6.8', 'k8s.gcr.io/pause:3.6', /sandbox_image/],
  ['containerd@1.7', 'registry.k8s.io/pause:3.8', /\[plugins\."io\.containerd\.grpc\.v1\.cri"\] sandbox_image/],
  ['containerd@2.0', 'registry.k8s.io/pause:3.10', /\[plugins\."io\.containerd\.cri\.v1\.images"\.pinned_images\] sandbox/],
  ['containerd@2.1', 'registry.k8s.io/pause:3.10', /pinned_images\] sandbox/],
  ['cri-o@1.30', 'registry.k8s.io/pause:3.9', /\[crio\.image\] pause_image/],
  ['crio@1.24', 'registry.k8s.io/pause:3.6', /pause_image/],
  ['docker@cri-dockerd', 'registry.k8s.io/pause:3.10', /--pod-infra-container-image/],
  ['docker@cri-dockerd@0.3.9', 'registry.k8s.io/pause:3.6', /--pod-infra-container-image/],
]

for (const [spec, image, setting] of DEFAULTS) {
  test(`runtime ${spec} defaults to ${image}`, (t) => {
    const r = resolveRuntimePause(spec)
    t.is(r.image, image)
    t.regex(r.setting, setting)
  })
}

test('containerd@1.6 warns that 1.6.0–1.6.8 still defaulted to k8s.gcr.io', (t) => {
  const r = resolveRuntimePause('containerd@1.6')
  t.regex(r.warnings.join('\n'), /containerd 1\.6\.0–1\.6\.8 default to k8s\.gcr\.io\/pause:3\.6/)
})

test('--runtime entries say whose they are and warn on a pause mismatch, naming the setting', async (t) => {
  const list = await resolveImageList({kubernetesVersion: 'v1.31.6', runtimes: ['containerd@1.7', 'containerd@2.0', 'cri-o@1.30']})
  const names = list.entries.map((e) => e.name)
  t.deepEqual(names.slice(7), ['registry.k8s.io/pause:3.8', 'registry.k8s.io/pause:3.9'])
  const pause = list.entries.find((e) => e.name === 'registry.k8s.io/pause:3.10')!
  // containerd 2.0 asks for kubeadm's own pause: one entry, two owners.
  t.is(pause.sources.length, 2)
  t.regex(pause.sources[1], /^containerd 2\.0\.\d+ default sandbox image$/)
  const c17 = list.entries.find((e) => e.name === 'registry.k8s.io/pause:3.8')!
  t.is(c17.role, 'sandbox')
  t.regex(c17.source, /^containerd 1\.7\.\d+ default sandbox image$/)
  const warnings = list.warnings.join('\n')
  t.regex(warnings, /kubeadm v1\.31\.6 uses registry\.k8s\.io\/pause:3\.10 but containerd 1\.7\.\d+ defaults to registry\.k8s\.io\/pause:3\.8: .*\[plugins\."io\.containerd\.grpc\.v1\.cri"\] sandbox_image = "registry\.k8s\.io\/pause:3\.10"/)
  t.regex(warnings, /cri-o 1\.30\.\d+ defaults to registry\.k8s\.io\/pause:3\.9: .*\[crio\.image\] pause_image = "registry\.k8s\.io\/pause:3\.10"/)
  t.notRegex(warnings, /containerd 2\.0/)
})

test('unknown runtimes and releases are clear errors', (t) => {
  t.throws(() => resolveRuntimePause('rkt@1.0'), {message: /unknown runtime "rkt"/})
  t.throws(() => resolveRuntimePause('docker@moby'), {message: /only through cri-dockerd/})
})

test('an unknown series is a one-line error listing every known series', (t) => {
  for (const [spec, runtime] of [['containerd@1.2', 'containerd'], ['containerd@9.9', 'containerd'], ['cri-o@1.99', 'cri-o'], ['docker@cri-dockerd@0.1', 'cri-dockerd']] as const) {
    const error = t.throws(() => resolveRuntimePause(spec))
    t.notRegex(error.message, /\n/)
    t.true(error.message.startsWith(`invalid --runtime "${spec}": `), error.message)
    t.true(error.message.endsWith(`(known series: ${TABLES[runtime].series.map((s) => s.series).join(', ')})`), error.message)
  }
  // A series left out of the table says why (CRI-O <= 1.10 defaulted to the unqualified "kubernetes/pause").
  t.throws(() => resolveRuntimePause('cri-o@1.9'), {message: /cri-o 1\.9 is not in the table: default pause image "kubernetes\/pause" is an unqualified name/})
  t.throws(() => resolveRuntimePause('containerd@1.3'), {message: /containerd 1\.3 is not in the table: older than containerd 1\.4/})
})

test('the tables cover containerd 1.4 to 2.3 and every CRI-O minor from 1.11 with a source per release', (t) => {
  t.deepEqual(knownRuntimeSeries('containerd'), ['1.4', '1.5', '1.6', '1.7', '2.0', '2.1', '2.2', '2.3'])
  t.deepEqual(knownRuntimeSeries('cri-o'), Array.from({length: 26}, (_, i) => `1.${11 + i}`))
  for (const [runtime, table] of Object.entries(TABLES)) {
    for (const row of table.releases) t.true(row.source.startsWith(`v${row.version}:`) && /:\d+ \w+$/.test(row.source), `${runtime} ${row.version}: ${row.source}`)
  }
})

test('every table entry is accepted and gives its own image; each series gives its newest release', (t) => {
  let checked = 0
  for (const [runtime, table] of Object.entries(TABLES) as Array<[RuntimeName, (typeof TABLES)[RuntimeName]]>) {
    for (const row of table.releases) {
      const r = resolveRuntimePause(`${SPEC_PREFIX[runtime]}${row.version}`)
      t.is(r.runtime, runtime)
      t.is(r.version, row.version)
      t.is(r.image, row.sandboxImage, `${runtime} ${row.version}`)
      t.true(r.source.endsWith(row.source))
      checked++
    }
    for (const {series} of table.series) {
      const newest = table.releases.filter((row) => seriesOf(row.version) === series).at(-1)!
      const r = resolveRuntimePause(`${SPEC_PREFIX[runtime]}${series}`)
      t.is(r.version, newest.version)
      t.is(r.image, newest.sandboxImage)
    }
  }
  t.true(checked > 400)
})

test('containerd@1.5 warns that 1.5.0–1.5.13 default to k8s.gcr.io/pause:3.5 and names the release to ask for', (t) => {
  const r = resolveRuntimePause('containerd@1.5')
  t.is(r.version, '1.5.18')
  t.deepEqual(r.warnings, ['containerd 1.5.0–1.5.13 default to k8s.gcr.io/pause:3.5, not registry.k8s.io/pause:3.5 (used for containerd@1.5): name the exact release (containerd@1.5.13) if nodes run it'])
  t.deepEqual(resolveRuntimePause('containerd@1.4').warnings, [])
})

test('containerd config versions come with the series: 2 for 1.x, 3 for 2.0–2.2, 4 for 2.3', (t) => {
  const versions = knownRuntimeSeries('containerd').map((s) => resolveRuntimePause(`containerd@${s}`).configVersion)
  t.deepEqual(versions, [2, 2, 2, 2, 3, 3, 3, 4])
  t.is(resolveRuntimePause('cri-o@1.30').configVersion, undefined)
})

test('the --runtime help text names every series of every table', (t) => {
  const text = runtimeFlagDescription()
  t.true(text.includes(`containerd@${TABLES.containerd.series.map((s) => s.series).join('|')}`), text)
  t.true(text.includes(`cri-o@${TABLES['cri-o'].series.map((s) => s.series).join('|')}`), text)
  t.true(text.includes(`docker@cri-dockerd[@${TABLES['cri-dockerd'].series.map((s) => s.series).join('|')}]`), text)
})
