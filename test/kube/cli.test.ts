/** The built CLI (`kubeferry images …`, see test/helpers/cli.ts): exact output, JSON, and bad input. */
import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {runCli} from '../helpers/cli.js'

const run = (args: string[], input?: string) => runCli(['images', ...args], {stdin: input, env: {NO_COLOR: '1'}})

let dir: string
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeferry-images-cli-'))
})
test.after.always(async () => {
  await rm(dir, {recursive: true, force: true})
})

test('prints exactly kubeadm\'s list for v1.31.6 (kubernetes/kubeadm issue 3164) and nothing on stderr', async (t) => {
  const r = await run(['--kubernetes-version', 'v1.31.6'])
  t.is(r.code, 0)
  t.is(r.stderr, '')
  t.is(
    r.stdout,
    [
      'registry.k8s.io/kube-apiserver:v1.31.6',
      'registry.k8s.io/kube-controller-manager:v1.31.6',
      'registry.k8s.io/kube-scheduler:v1.31.6',
      'registry.k8s.io/kube-proxy:v1.31.6',
      'registry.k8s.io/coredns/coredns:v1.11.3',
      'registry.k8s.io/pause:3.10',
      'registry.k8s.io/etcd:3.5.15-0',
      '',
    ].join('\n'),
  )
})

test('--json gives name, tag, role and source; --runtime adds a noted sandbox entry', async (t) => {
  const r = await run(['--kubernetes-version', '1.29.3', '--runtime', 'containerd@1.7', '--json'])
  t.is(r.code, 0)
  const doc = JSON.parse(r.stdout) as {kubeadm: {version: string}; images: Array<{name: string; tag: string; role: string; source: string}>; warnings: string[]}
  t.is(doc.kubeadm.version, 'v1.29.3')
  t.deepEqual(doc.images[4], {name: 'registry.k8s.io/coredns/coredns:v1.11.1', tag: 'v1.11.1', role: 'coredns', source: 'kubeadm v1.29.3', sources: ['kubeadm v1.29.3']})
  t.is(doc.images[7].name, 'registry.k8s.io/pause:3.8')
  t.is(doc.images[7].role, 'sandbox')
  t.regex(doc.warnings.join('\n'), /sandbox_image = "registry\.k8s\.io\/pause:3\.9"/)

  const text = await run(['--kubernetes-version', '1.29.3', '--runtime', 'containerd@1.7'])
  t.is(text.stdout.trim().split('\n').length, 8)
  t.regex(text.stderr, /note: registry\.k8s\.io\/pause:3\.8 is containerd 1\.7\.\d+ default sandbox image/)
  t.regex(text.stderr, /warning: kubeadm v1\.29\.3 uses registry\.k8s\.io\/pause:3\.9 but containerd/)
})

test('helm template … | kubeferry images --from-manifests -', async (t) => {
  const r = await run(['--from-manifests', '-'], 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n')
  t.is(r.code, 0)
  t.is(r.stdout, 'docker.io/library/nginx:1.27\n')
})

async function expectOneLineError(t: import('ava').ExecutionContext, args: string[], message: RegExp): Promise<void> {
  const r = await run(args)
  t.not(r.code, 0, args.join(' '))
  t.is(r.stdout, '')
  // Node's own process warnings (another command module being rebuilt mid-run) are not ours to judge.
  const lines = r.stderr.trimEnd().split('\n').filter((l) => !/^\(node:\d+\) Warning|^\(Use `node --trace-warnings/.test(l))
  t.regex(lines[0], message)
  t.true(lines.length <= 2 && (lines.length === 1 || lines[1].startsWith('  hint: ')), `one error line (plus a hint), got:\n${r.stderr}`)
  t.notRegex(r.stderr, /\n\s+at /, 'no stack trace')
}

test('bad versions: v1.31.99, 1.x, v2.0.0', async (t) => {
  await expectOneLineError(t, ['--kubernetes-version', 'v1.31.99'], /^error: Kubernetes v1\.31\.99 was never released: .*nearest known: v1\.31\.\d+/)
  await expectOneLineError(t, ['--kubernetes-version', '1.x'], /^error: invalid Kubernetes version "1\.x"/)
  await expectOneLineError(t, ['--kubernetes-version', 'v2.0.0'], /^error: Kubernetes v2\.0\.0 does not exist/)
})

test('broken YAML (config and manifests) and an unreadable --images-file', async (t) => {
  const broken = join(dir, 'broken.yaml')
  await writeFile(broken, 'apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: "v1.31.6\n')
  await expectOneLineError(t, ['--config', broken], /^error: .*broken\.yaml: invalid YAML/)
  await expectOneLineError(t, ['--from-manifests', broken], /^error: .*broken\.yaml:\d+: invalid YAML/)
  await expectOneLineError(t, ['--images-file', join(dir, 'missing.txt')], /^error: cannot read --images-file .*missing\.txt: no such file or directory/)
  const unreadable = join(dir, 'unreadable.txt')
  await writeFile(unreadable, 'nginx\n')
  await chmod(unreadable, 0o000)
  if (process.getuid?.() !== 0) await expectOneLineError(t, ['--images-file', unreadable], /^error: cannot read --images-file .*unreadable\.txt: permission denied/)
  await expectOneLineError(t, ['--images-file', dir], /^error: cannot read --images-file .*: is a directory, not a file/)
})

test('--images-file with comments; a bad reference names file and line', async (t) => {
  const file = join(dir, 'images.txt')
  await writeFile(file, '# extra images\nquay.io/cilium/cilium:v1.16.3   # CNI\n\nnginx:1.27\n')
  const r = await run(['--images-file', file])
  t.is(r.code, 0)
  t.is(r.stdout, 'quay.io/cilium/cilium:v1.16.3\ndocker.io/library/nginx:1.27\n')
  const bad = join(dir, 'bad.txt')
  await writeFile(bad, 'nginx\nNot A Ref!\n')
  await expectOneLineError(t, ['--images-file', bad], /^error: .*bad\.txt:2: invalid image reference/)
})
