import {dirname, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import test from 'ava'
import {scanManifests, scanManifestText} from '../../src/kube/manifests.js'
import {resolveImageList} from '../../src/kube/resolve.js'

// Compiled to dist/test/kube; the YAML fixtures stay in test/kube/fixtures.
const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/kube/fixtures')
// JSON streams, JSON lists, duplicated keys and merge keys: inputs kubectl apply -f accepts.
const kubectlFixtures = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/kube/kubectl-fixtures')
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
  t.throws(() => scanManifestText('kind: Pod\nspec:\n  containers:\n  - name: a\n    image: [x\n', 'broken.yaml'), {message: /^broken\.yaml:\d+: invalid YAML: /})
  t.throws(() => scanManifestText('kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n', 'p.yaml'), {message: /p\.yaml: Pod p, container a has no image/})
})

const POD = (name: string, image: string) => ({apiVersion: 'v1', kind: 'Pod', metadata: {name}, spec: {containers: [{name: 'c', image}]}})

test('kubectl create --dry-run=client -o json output for several objects (one per line, indented) is read', async (t) => {
  const found = await scanManifests(resolve(kubectlFixtures, 'dry-run-stream.json'), noStdin)
  t.deepEqual(found.map((f) => f.image), ['ghcr.io/shop/migrate:2.4.0', 'nginx:1.27', 'busybox:1.36'])
  t.regex(found[0].source, /dry-run-stream\.json: Deployment shop\/web, initContainer migrate$/)
  t.regex(found[2].source, /dry-run-stream\.json: CronJob shop\/report, container report$/)
})

test('JSON objects back to back ({…}{…}) and on separate lines ({…}\\n{…}) are all read', (t) => {
  const a = JSON.stringify(POD('a', 'alpine:3.20'))
  const b = JSON.stringify(POD('b', 'busybox:1.36'))
  const c = JSON.stringify(POD('c', 'nginx:1.27'))
  t.deepEqual(scanManifestText(`${a}${b}${c}`, 'compact.json').map((f) => f.image), ['alpine:3.20', 'busybox:1.36', 'nginx:1.27'])
  t.deepEqual(scanManifestText(`\n${a}\n${b}\n\n${c}\n`, 'lines.json').map((f) => f.image), ['alpine:3.20', 'busybox:1.36', 'nginx:1.27'])
  // A string holding braces does not end an object early.
  const tricky = JSON.stringify({...POD('d', 'redis:7.4'), metadata: {name: 'd', annotations: {note: '} { "\\" }'}}})
  t.deepEqual(scanManifestText(`${tricky}${a}`, 'tricky.json').map((f) => f.image), ['redis:7.4', 'alpine:3.20'])
})

test('a JSON List (kubectl get -o json) and a typed PodList whose items have no kind, in a directory with *.json', async (t) => {
  const found = await scanManifests(kubectlFixtures, noStdin)
  const fromList = found.filter((f) => f.source.includes('get-list.json'))
  t.deepEqual(fromList.map((f) => f.image), [
    'registry.k8s.io/e2e-test-images/agnhost:2.52',
    'busybox:1.36',
    'registry.k8s.io/kube-proxy:v1.31.6',
    'registry.k8s.io/coredns/coredns:v1.11.3',
  ])
  t.regex(fromList[1].source, /Pod default\/debug, ephemeralContainer debugger-x7k$/)
  t.regex(fromList[3].source, /Pod kube-system\/coredns-7c65d6cfc9-abcde, container coredns$/)
  // dry-run-stream.json, duplicate-keys.yaml and get-list.json, in name order.
  t.deepEqual([...new Set(found.map((f) => f.source.split(': ')[0].replace(`${kubectlFixtures}/`, '')))], ['dry-run-stream.json', 'duplicate-keys.yaml', 'get-list.json'])
})

test('a duplicated key keeps its last value, as kubectl does, with a warning naming file and line', async (t) => {
  const warnings: string[] = []
  const path = resolve(kubectlFixtures, 'duplicate-keys.yaml')
  const found = await scanManifests(path, noStdin, (w) => warnings.push(w))
  t.is(found[0].image, 'ghcr.io/shop/api:1.1.0')
  t.deepEqual(warnings, [`${path}:13: duplicate key "image": its last value is used, as kubectl does`])
  // Without a listener nothing is thrown either.
  t.notThrows(() => scanManifestText('kind: Pod\nkind: Pod\nspec: {containers: [{name: a, image: x:1}]}\n', 'dup.yaml'))
})

test('YAML merge keys (<<: *anchor) are applied as go-yaml does for kubectl', async (t) => {
  const found = await scanManifests(resolve(kubectlFixtures, 'duplicate-keys.yaml'), noStdin)
  t.deepEqual(found.slice(1).map((f) => [f.image, f.source.replace(/^.*: Pod /, '')]), [
    ['ghcr.io/shop/app:3.2.1', 'queue, container app'],
    ['ghcr.io/shop/app:3.2.1', 'queue, container worker'],
  ])
})

test('JSON then YAML (kubectl switches after one object) and YAML flow mappings that are not JSON', (t) => {
  const a = JSON.stringify(POD('a', 'alpine:3.20'))
  t.deepEqual(scanManifestText(`${a}\n---\nkind: Pod\nspec:\n  containers:\n  - {name: b, image: 'busybox:1.36'}\n`, 'mixed').map((f) => f.image), ['alpine:3.20', 'busybox:1.36'])
  t.deepEqual(scanManifestText('{kind: Pod, spec: {containers: [{name: a, image: nginx:1.27}]}}\n', 'flow.yaml').map((f) => f.image), ['nginx:1.27'])
})

test('an unreadable JSON object is a one-line error with file:line and a hint', (t) => {
  const a = JSON.stringify(POD('a', 'alpine:3.20'), null, 2)
  const broken = `${a}\n${a}\n{\n  "kind": "Pod",\n  "spec": {"containers": [{"name": "c" "image": "x"}]}\n}\n`
  const line = a.split('\n').length * 2 + 3
  const error = t.throws(() => scanManifestText(broken, 'three.json'))
  t.regex(error.message, new RegExp(`^three\\.json:${line}: invalid JSON: `))
  t.notRegex(error.message, /\n/)
  t.truthy((error as Error & {hint?: string}).hint)
  // Truncated: the object that never closes is named by its first line.
  t.throws(() => scanManifestText(`${a}\n${a}\n{"kind": "Pod", "spec": {`, 'cut.json'), {message: new RegExp(`^cut\\.json:${a.split('\n').length * 2 + 1}: invalid JSON: the object is not closed`)})
  // A single broken JSON object reports the JSON error, not a YAML one.
  t.throws(() => scanManifestText('{"kind": "Pod",\n "spec": {"containers": [}}\n', 'one.json'), {message: /^one\.json:2: invalid JSON: /})
  // YAML errors after JSON count lines from the start of the file.
  t.throws(() => scanManifestText(`${JSON.stringify(POD('a', 'alpine:3.20'))}\n---\nkind: Pod\nspec: [x\n`, 'mixed.yaml'), {message: /^mixed\.yaml:[45]: invalid YAML: /})
})
