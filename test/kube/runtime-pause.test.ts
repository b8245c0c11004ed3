/**
 * Default sandbox images as written in each runtime's source at its release tags:
 * containerd pkg/cri/config/config_unix.go (1.x `SandboxImage`) and internal/cri/config/config.go (2.x
 * `DefaultSandboxImage`), CRI-O pkg/config/config_linux.go `DefaultPauseImage`, cri-dockerd core/sandbox_helpers.go
 * `defaultSandboxImage`.
 */
import test from 'ava'
import {resolveImageList} from '../../src/kube/resolve.js'
import {resolveRuntimePause} from '../../src/kube/runtime-pause.js'

const DEFAULTS: Array<[string, string, RegExp]> = [
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
  t.throws(() => resolveRuntimePause('containerd@1.2'), {message: /no containerd release 1\.2 is known \(known series: 1\.6, 1\.7, 2\.0/})
  t.throws(() => resolveRuntimePause('docker@moby'), {message: /only through cri-dockerd/})
})
