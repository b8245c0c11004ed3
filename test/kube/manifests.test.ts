import {dirname, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import test from 'ava'
import {scanManifests, scanManifestText} from '../../src/kube/manifests.js'
import {resolveImageList} from '../../src/kube/resolve.js'

// Compiled to dist/test/kube; the YAML fixtures stay in test/kube/fixtures.
const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/kube/fixtures')
const noStdin = async () => {
  throw new Error('stdin not expected')
}

test('helm-rendered chart: init containers first, hook Jobs, digests kept, other kinds ignored', async (t) => {
  const found = await scanManifests(resolve(fixtures, 'helm-ingress-nginx.yaml'), noStdin)
  t.deepEqual(found.map((f) => f.image), [
    'docker.io/library/busybox:1.36',
    'registry.k8s.io/ingress-nginx/controller:v1.11.3@sha256:d56f135b6462cfc476447cfe564b83a45e8bb7da2774963b00d12161112270b7',
    'registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.4.4@sha256:a9f03b34a3cbfbb26d103a14046ab2c5130a80c3d69d526ff8063d2b37b9fd3f',
    'registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.4.4@sha256:a9f03b34a3cbfbb26d103a14046ab2c5130a80c3d69d526ff8063d2b37b9fd3f',
  ])
  t.regex(found[0].source, /helm-ingress-nginx\.yaml: Deployment ingress-nginx\/ingress-nginx-controller, initContainer wait-for-db$/)
})

test('CronJob and List (DaemonSet, StatefulSet, Pod with ephemeral container, ReplicaSet)', async (t) => {
  const cron = await scanManifests(resolve(fixtures, 'backup-cronjob.yaml'), noStdin)
  t.deepEqual(cron.map((f) => f.image), ['registry.k8s.io/etcd:3.5.15-0', 'amazon/aws-cli:2.17.0'])
  const list = await scanManifests(resolve(fixtures, 'kubectl-get-list.yaml'), noStdin)
  t.deepEqual(list.map((f) => f.image), [
    'quay.io/prometheus/node-exporter:v1.8.2',
    'redis:7.4',
    'oliver006/redis_exporter:v1.62.0',
    'nginx',
    'busybox:1.36',
    'docker.io/library/nginx:latest',
  ])
  t.regex(list[4].source, /Pod debug, ephemeralContainer debugger/)
})

test('a directory scans its *.yaml files in name order; stdin works with -', async (t) => {
  const all = await scanManifests(fixtures, noStdin)
  t.is(all[0].image, 'registry.k8s.io/etcd:3.5.15-0') // backup-cronjob.yaml sorts first
  t.is(all.length, 2 + 4 + 6)
  const fromStdin = await scanManifests('-', async () => 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: alpine:3.20\n')
  t.deepEqual(fromStdin.map((f) => f.image), ['alpine:3.20'])
})

test('deduplicated by normalised reference in stable order, after kubeadm and runtime entries', async (t) => {
  const list = await resolveImageList({
    kubernetesVersion: 'v1.31.6',
    images: ['nginx', 'registry.k8s.io/etcd:3.5.15-0'],
    manifests: [resolve(fixtures, 'kubectl-get-list.yaml'), resolve(fixtures, 'backup-cronjob.yaml')],
    readStdin: noStdin,
  })
  const extras = list.entries.slice(7).map((e) => e.name)
  t.deepEqual(extras, [
    'docker.io/library/nginx:latest',
    'quay.io/prometheus/node-exporter:v1.8.2',
    'docker.io/library/redis:7.4',
    'docker.io/oliver006/redis_exporter:v1.62.0',
    'docker.io/library/busybox:1.36',
    'docker.io/amazon/aws-cli:2.17.0',
  ])
  const etcd = list.entries.find((e) => e.role === 'etcd')!
  t.deepEqual(etcd.sources.slice(1).map((s) => s.replace(`${fixtures}/`, '')), ['--image', 'backup-cronjob.yaml: CronJob kube-system/etcd-backup, initContainer snapshot'])
  const nginx = list.entries.find((e) => e.name === 'docker.io/library/nginx:latest')!
  t.is(nginx.sources.length, 3) // --image nginx, Pod debug, ReplicaSet legacy
})

test('broken YAML and unrendered templates are clear errors naming the file', (t) => {
  t.throws(() => scanManifestText('kind: Pod\nspec:\n  containers:\n  - name: a\n    image: [x\n', 'broken.yaml'), {message: /^broken\.yaml: invalid YAML at line \d+/})
  t.throws(() => scanManifestText('kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n', 'p.yaml'), {message: /p\.yaml: Pod p, container a has no image/})
})
