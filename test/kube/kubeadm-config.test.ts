import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {parseKubeadmConfig} from '../../src/kube/kubeadm-config.js'
import {resolveImageList} from '../../src/kube/resolve.js'

let dir: string
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeferry-kubeadm-config-'))
})
test.after.always(async () => {
  await rm(dir, {recursive: true, force: true})
})

async function listFor(yaml: string, extra: {kubernetesVersion?: string; imageRepository?: string} = {}): Promise<string[]> {
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`)
  await writeFile(file, yaml)
  return (await resolveImageList({configFile: file, ...extra})).entries.map((e) => e.name)
}

test('v1beta2 ClusterConfiguration (kubeadm 1.20): imageRepository, dns and etcd.local overrides', async (t) => {
  const names = await listFor(`apiVersion: kubeadm.k8s.io/v1beta2
kind: ClusterConfiguration
kubernetesVersion: v1.20.15
imageRepository: registry.corp:5000/k8s
dns:
  type: CoreDNS
  imageRepository: registry.corp:5000/dns
  imageTag: 1.7.1
etcd:
  local:
    imageRepository: quay.io/coreos
    imageTag: v3.4.14
    dataDir: /var/lib/etcd
`)
  t.deepEqual(names, [
    'registry.corp:5000/k8s/kube-apiserver:v1.20.15',
    'registry.corp:5000/k8s/kube-controller-manager:v1.20.15',
    'registry.corp:5000/k8s/kube-scheduler:v1.20.15',
    'registry.corp:5000/k8s/kube-proxy:v1.20.15',
    'registry.corp:5000/k8s/pause:3.2',
    'quay.io/coreos/etcd:v3.4.14',
    'registry.corp:5000/dns/coredns:1.7.1',
  ])
})

test('v1beta3 multi-document file with InitConfiguration and KubeletConfiguration; dns.imageRepository with the sub-path', async (t) => {
  // kubeadm issue 3164: to keep coredns/coredns under a mirror, set dns.imageRepository to "<repo>/coredns".
  const names = await listFor(`apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.0.0.10
nodeRegistration:
  criSocket: unix:///run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.31.6
imageRepository: my.repo
dns:
  imageRepository: my.repo/coredns
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
`)
  t.deepEqual(names, [
    'my.repo/kube-apiserver:v1.31.6',
    'my.repo/kube-controller-manager:v1.31.6',
    'my.repo/kube-scheduler:v1.31.6',
    'my.repo/kube-proxy:v1.31.6',
    'my.repo/coredns/coredns:v1.11.3',
    'my.repo/pause:3.10',
    'my.repo/etcd:3.5.15-0',
  ])
})

test('v1beta4 external etcd drops etcd; dns.disabled and proxy.disabled drop their images', async (t) => {
  const names = await listFor(`apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: 1.32.2
etcd:
  external:
    endpoints: ["https://10.0.0.5:2379"]
    caFile: /etc/kubernetes/pki/etcd/ca.crt
proxy:
  disabled: true
dns:
  disabled: true
`)
  t.deepEqual(names, [
    'registry.k8s.io/kube-apiserver:v1.32.2',
    'registry.k8s.io/kube-controller-manager:v1.32.2',
    'registry.k8s.io/kube-scheduler:v1.32.2',
    'registry.k8s.io/pause:3.10',
  ])
})

test('v1beta4 with the default repository named explicitly keeps coredns/coredns; dns.imageTag overrides the tag', async (t) => {
  const names = await listFor(`apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.33.1
imageRepository: registry.k8s.io
dns:
  imageTag: v1.12.1
`)
  t.is(names[4], 'registry.k8s.io/coredns/coredns:v1.12.1')
})

test('flags override the file: --kubernetes-version and --image-repository', async (t) => {
  const names = await listFor(`apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.27.4
imageRepository: a.example
`, {kubernetesVersion: 'v1.28.4', imageRepository: 'b.example'})
  t.is(names[0], 'b.example/kube-apiserver:v1.28.4')
  t.is(names[6], 'b.example/coredns:v1.10.1')
})

test('bad kubeadm configs give one clear error naming the file', (t) => {
  t.throws(() => parseKubeadmConfig('apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n  kubernetesVersion: [v1\n', 'bad.yaml'), {message: /^bad\.yaml: invalid YAML/})
  t.throws(() => parseKubeadmConfig('apiVersion: kubeadm.k8s.io/v1alpha3\nkind: ClusterConfiguration\n', 'old.yaml'), {message: /old\.yaml: unsupported kubeadm API version kubeadm\.k8s\.io\/v1alpha3/})
  t.throws(() => parseKubeadmConfig('apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\ndns:\n  type: kube-dns\n', 'kd.yaml'), {message: /dns\.type kube-dns is not supported/})
  t.throws(() => parseKubeadmConfig('apiVersion: v1\nkind: ConfigMap\n', 'cm.yaml'), {message: /no kubeadm\.k8s\.io document/})
})

test('a config without kubernetesVersion needs --kubernetes-version', async (t) => {
  const error = await t.throwsAsync(listFor('apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nimageRepository: x.example\n'))
  t.regex(error!.message, /sets no kubernetesVersion/)
})
