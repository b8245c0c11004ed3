/**
 * `kubeferry config`: every generated file parses with a real parser and says what the runtime will do; the Secret
 * decodes to the credential and nothing else holds it; bad input gets one clear line.
 */
import {mkdtemp, readdir, readFile, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, relative} from 'node:path'
import test from 'ava'
import {parse as parseToml} from 'smol-toml'
import {parse as parseYaml, parseAllDocuments} from 'yaml'
import {fixtureBundle} from '../push/helpers.js'
import {firstRunOnly, runCli} from '../helpers/cli.js'

async function walk(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, {withFileTypes: true})) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await walk(p)))
    else out.push(p)
  }
  return out
}

type Toml = Record<string, any>

async function generate(args: string[], input?: string): Promise<{dir: string; files: Map<string, string>; stderr: string; stdout: string; code: number | null}> {
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-config-'))
  const r = await runCli(['config', ...args, '-o', dir], {stdin: input})
  const files = new Map<string, string>()
  if (r.code === 0) for (const f of await walk(dir)) files.set(`/${relative(dir, f)}`, await readFile(f, 'utf8'))
  return {dir, files, stderr: r.stderr, stdout: r.stdout, code: r.code}
}

let bundlePath: Promise<string> | undefined
const bundle = () => (bundlePath ??= fixtureBundle().then((b) => b.path))

test('--for all: every file parses (smol-toml, yaml, JSON), says where it goes, and points at the prefix', async (t) => {
  const pwFile = join(await mkdtemp(join(tmpdir(), 'kubeferry-pw-')), 'pw')
  const password = 'pa55-w0rd/with:colon'
  await writeFile(pwFile, `${password}\n`)
  const g = await generate(['--registry', 'registry.corp:5000/k8s', '--bundle', await bundle(), '--for', 'all', '--username', 'puller', '--password-file', pwFile])
  t.is(g.code, 0, g.stderr)
  const paths = [...g.files.keys()].sort()
  t.true(paths.includes('/etc/containerd/certs.d/registry.k8s.io/hosts.toml'))
  t.true(paths.includes('/etc/containerd/certs.d/docker.io/hosts.toml'))
  for (const [path, content] of g.files) {
    if (path === '/README.txt') continue
    if (path.endsWith('.toml') || path.endsWith('.conf')) t.notThrows(() => parseToml(content), path)
    else if (path.endsWith('.yaml')) t.true(parseAllDocuments(content).every((d) => d.errors.length === 0), path)
    else if (path.endsWith('.json')) t.notThrows(() => JSON.parse(content), path)
    if (!path.endsWith('.json')) t.regex(content.split('\n')[0], /^# /, `${path} starts with where it goes`)
  }
  t.regex(g.files.get('/README.txt')!, /etc\/docker\/daemon\.json\n\s+.*merge/)

  const hosts = parseToml(g.files.get('/etc/containerd/certs.d/registry.k8s.io/hosts.toml')!) as Toml
  t.is(hosts.server, 'https://registry.k8s.io')
  t.deepEqual(Object.keys(hosts.host), ['https://registry.corp:5000/v2/k8s'])
  t.is(hosts.host['https://registry.corp:5000/v2/k8s'].override_path, true)
  t.deepEqual(hosts.host['https://registry.corp:5000/v2/k8s'].capabilities, ['pull', 'resolve'])
  t.is(hosts.host['https://registry.corp:5000/v2/k8s'].skip_verify, undefined, 'skip_verify only when asked')
  t.is((parseToml(g.files.get('/etc/containerd/certs.d/docker.io/hosts.toml')!) as Toml).server, 'https://registry-1.docker.io')

  const containerd = parseToml(g.files.get('/etc/containerd/config.toml')!) as Toml
  t.is(containerd.version, 2)
  t.is(containerd.plugins['io.containerd.grpc.v1.cri'].sandbox_image, 'registry.corp:5000/k8s/pause:3.10')
  t.is(containerd.plugins['io.containerd.grpc.v1.cri'].registry.config_path, '/etc/containerd/certs.d')
  t.regex(g.files.get('/etc/containerd/config.toml')!, /# \[plugins\."io\.containerd\.grpc\.v1\.cri"\]\.registry\.configs\."registry\.corp:5000"\.auth\]|# \[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\.configs\."registry\.corp:5000"\.auth\]/)

  const crio = parseToml(g.files.get('/etc/crio/crio.conf.d/50-kubeferry.conf')!) as Toml
  t.is(crio.crio.image.pause_image, 'registry.corp:5000/k8s/pause:3.10')
  const registries = parseToml(g.files.get('/etc/containers/registries.conf.d/50-kubeferry.conf')!) as Toml
  const k8s = registries.registry.find((r: Toml) => r.prefix === 'registry.k8s.io')
  t.deepEqual(k8s.mirror, [{location: 'registry.corp:5000/k8s'}])

  const daemon = JSON.parse(g.files.get('/etc/docker/daemon.json')!) as Record<string, unknown>
  t.is(daemon['registry-mirrors'], undefined, 'docker mirrors cannot carry a prefix path')
  t.regex(g.stderr, /registry-mirrors cannot carry a path/)
  t.regex(g.stderr, /docker: can only mirror docker\.io/)

  const k3s = parseYaml(g.files.get('/etc/rancher/k3s/registries.yaml')!) as {mirrors: Record<string, {endpoint: string[]; rewrite: Record<string, string>}>}
  t.deepEqual(k3s.mirrors['registry.k8s.io'], {endpoint: ['https://registry.corp:5000'], rewrite: {'^(.*)$': 'k8s/$1'}})
  t.truthy(g.files.get('/etc/rancher/rke2/registries.yaml'))
  t.is((parseYaml(g.files.get('/etc/rancher/k3s/config.yaml.d/50-kubeferry.yaml')!) as Record<string, string>)['pause-image'], 'registry.corp:5000/k8s/pause:3.10')

  const kubeadm = parseYaml(g.files.get('/kubeadm-config.yaml')!) as Record<string, any>
  t.is(kubeadm.kind, 'ClusterConfiguration')
  t.is(kubeadm.imageRepository, 'registry.corp:5000/k8s')
  t.deepEqual(kubeadm.dns, {imageRepository: 'registry.corp:5000/k8s', imageTag: 'v1.11.3'})
  t.deepEqual(kubeadm.etcd, {local: {imageRepository: 'registry.corp:5000/k8s', imageTag: '3.5.15-0'}})

  // The Secret decodes to the credential, per namespace; the patch names it.
  const docs = parseAllDocuments(g.files.get('/kubeferry-pull-secret.yaml')!).map((d) => d.toJS() as Record<string, any>)
  t.deepEqual(docs.map((d) => d.metadata.namespace), ['default', 'kube-system'])
  for (const d of docs) {
    t.is(d.type, 'kubernetes.io/dockerconfigjson')
    const cfg = JSON.parse(Buffer.from(d.data['.dockerconfigjson'], 'base64').toString('utf8')) as {auths: Record<string, {username: string; password: string; auth: string}>}
    t.deepEqual(Object.keys(cfg.auths), ['registry.corp:5000'])
    t.is(cfg.auths['registry.corp:5000'].username, 'puller')
    t.is(cfg.auths['registry.corp:5000'].password, password)
    t.is(Buffer.from(cfg.auths['registry.corp:5000'].auth, 'base64').toString('utf8'), `puller:${password}`)
  }
  t.deepEqual(parseYaml(g.files.get('/kubeferry-serviceaccount-patch.yaml')!), {imagePullSecrets: [{name: 'kubeferry-registry'}]})

  // Only the Secret holds the credential, in any form.
  const forms = [password, Buffer.from(password).toString('base64'), Buffer.from(`puller:${password}`).toString('base64')]
  for (const [path, content] of g.files) if (path !== '/kubeferry-pull-secret.yaml') for (const f of forms) t.false(content.includes(f), `${path} holds the secret`)
  for (const f of forms) t.false(g.stderr.includes(f) || g.stdout.includes(f))
  // The node-level auth warning names the fix.
  t.regex(g.stderr, /requires authentication.*no pull secret for the sandbox/s)
  t.regex(g.stderr, /registry\.configs\."registry\.corp:5000"\.auth/)
})

if (firstRunOnly('variants of the generator, the same code as --for all')) test('containerd 2.x, plain HTTP registry without prefix, CA file and skip_verify', async (t) => {
  const g2 = await generate(['--registry', 'registry.corp:5000/k8s', '--bundle', await bundle(), '--for', 'containerd', '--containerd-version', '2.0'])
  t.is(g2.code, 0, g2.stderr)
  const c2 = parseToml(g2.files.get('/etc/containerd/config.toml')!) as Toml
  t.is(c2.version, 3)
  t.is(c2.plugins['io.containerd.cri.v1.images'].pinned_images.sandbox, 'registry.corp:5000/k8s/pause:3.10')
  t.is(c2.plugins['io.containerd.cri.v1.images'].registry.config_path, '/etc/containerd/certs.d')

  const http = await generate(['--registry', 'registry.corp:5000', '--bundle', await bundle(), '--for', 'hosts', '--for', 'docker', '--for', 'crio', '--for', 'k3s', '--insecure-registry', 'registry.corp:5000'])
  t.is(http.code, 0, http.stderr)
  const hosts = parseToml(http.files.get('/etc/containerd/certs.d/registry.k8s.io/hosts.toml')!) as Toml
  t.deepEqual(Object.keys(hosts.host), ['http://registry.corp:5000'])
  t.is(hosts.host['http://registry.corp:5000'].override_path, undefined, 'no prefix, no override_path')
  t.is((parseToml(http.files.get('/etc/containerd/certs.d/registry.corp:5000/hosts.toml')!) as Toml).server, 'http://registry.corp:5000')
  const daemon = JSON.parse(http.files.get('/etc/docker/daemon.json')!) as Record<string, string[]>
  t.deepEqual(daemon['registry-mirrors'], ['http://registry.corp:5000'])
  t.deepEqual(daemon['insecure-registries'], ['registry.corp:5000'])
  const reg = parseToml(http.files.get('/etc/containers/registries.conf.d/50-kubeferry.conf')!) as Toml
  t.true(reg.registry.every((r: Toml) => (r.mirror ?? [{insecure: true}]).every((m: Toml) => m.insecure === true) || r.insecure === true))
  t.deepEqual((parseYaml(http.files.get('/etc/rancher/k3s/registries.yaml')!) as any).mirrors['docker.io'], {endpoint: ['http://registry.corp:5000']})

  const caDir = await mkdtemp(join(tmpdir(), 'kubeferry-ca-'))
  const ca = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n'
  await writeFile(join(caDir, 'ca.pem'), ca)
  const tls = await generate(['--registry', 'registry.corp/k8s', '--bundle', await bundle(), '--for', 'hosts', '--ca-file', join(caDir, 'ca.pem'), '--skip-verify'])
  t.is(tls.code, 0, tls.stderr)
  const h = parseToml(tls.files.get('/etc/containerd/certs.d/registry.k8s.io/hosts.toml')!) as Toml
  t.is(h.host['https://registry.corp/v2/k8s'].ca, '/etc/containerd/certs.d/registry.corp/ca.crt')
  t.is(h.host['https://registry.corp/v2/k8s'].skip_verify, true)
  t.is(tls.files.get('/etc/containerd/certs.d/registry.corp/ca.crt'), ca)
})

if (firstRunOnly('variants of the name rules, the same code as --for all')) test('kubeadm config follows the push name rules (alias, --no-coredns-alias, --flatten, --map)', async (t) => {
  const b = await bundle()
  const kubeadm = async (extra: string[]) => {
    const g = await generate(['--registry', 'registry.corp/k8s', '--bundle', b, '--for', 'kubeadm', ...extra])
    t.is(g.code, 0, g.stderr)
    return {doc: parseYaml(g.files.get('/kubeadm-config.yaml')!) as Record<string, any>, stderr: g.stderr}
  }
  t.is((await kubeadm([])).doc.dns.imageRepository, 'registry.corp/k8s')
  t.is((await kubeadm(['--no-coredns-alias'])).doc.dns.imageRepository, 'registry.corp/k8s/coredns')
  const flat = await kubeadm(['--flatten'])
  t.is(flat.doc.imageRepository, 'registry.corp/k8s')
  t.is(flat.doc.dns.imageRepository, 'registry.corp/k8s')
  t.regex(flat.stderr, /renamed by --flatten\/--map/)
  const moved = await kubeadm(['--map', 'registry.k8s.io/etcd=storage/etcd'])
  t.is(moved.doc.etcd.local.imageRepository, 'registry.corp/k8s/storage')
  const broken = await runCli(['config', '--registry', 'registry.corp/k8s', '--bundle', b, '--for', 'kubeadm', '--map', 'registry.k8s.io/kube-proxy=net/kube-proxy'])
  t.is(broken.code, 1)
  t.regex(broken.stderr, /one imageRepository/)
})

test('--serve points hosts.toml at kubeferry serve with upstream paths', async (t) => {
  const g = await generate(['--serve', '10.0.0.5:5000', '--bundle', await bundle(), '--for', 'hosts'])
  t.is(g.code, 0, g.stderr)
  const hosts = parseToml(g.files.get('/etc/containerd/certs.d/registry.k8s.io/hosts.toml')!) as Toml
  t.deepEqual(hosts.host, {'http://10.0.0.5:5000': {capabilities: ['pull', 'resolve']}})
  const k = await runCli(['config', '--serve', '10.0.0.5:5000', '--for', 'kubeadm'])
  t.is(k.code, 1)
  t.regex(k.stderr, /not for --serve/)
})

if (firstRunOnly('output modes and bad input: messages')) test('stdout and --json output; bad input gets one clear line', async (t) => {
  const out = await runCli(['config', '--registry', 'registry.corp:5000/k8s', '--for', 'hosts'])
  t.is(out.code, 0, out.stderr)
  t.regex(out.stdout, /^# ==> \/etc\/containerd\/certs\.d\/docker\.io\/hosts\.toml$/m)
  const json = await runCli(['config', '--registry', 'registry.corp:5000/k8s', '--for', 'kubeadm', '--json'])
  t.is(json.code, 0, json.stderr)
  const doc = JSON.parse(json.stdout) as {files: Array<{path: string; content: string}>}
  t.is((parseYaml(doc.files[0].content) as Record<string, string>).imageRepository, 'registry.corp:5000/k8s')

  const cases: Array<[string[], RegExp, string?]> = [
    [['--registry', 'registry.corp:5000/K8s', '--for', 'hosts'], /invalid registry/],
    [['--for', 'hosts'], /--registry REGISTRY\[\/PREFIX\] or --serve/],
    [['--registry', 'registry.corp/k8s', '--for', 'secret'], /needs a credential/],
    [['--registry', 'registry.corp/k8s', '--for', 'secret', '--username', 'u', '--password', 'x'], /unknown flag --password for kubeferry config/],
    [['--registry', 'registry.corp/k8s', '--for', 'secret', '--username', 'u', '--password-stdin'], /password read is empty/, ''],
    [['--registry', 'registry.corp/k8s', '--for', 'containerd', '--containerd-version', '3.1'], /unsupported --containerd-version/],
    [['--registry', 'registry.corp/k8s', '--for', 'hosts', '--bundle', '/nonexistent.tar'], /nonexistent\.tar/],
  ]
  for (const [args, pattern, input] of cases) {
    const r = await runCli(['config', ...args], {stdin: input})
    t.not(r.code, 0, args.join(' '))
    t.regex(r.stderr, pattern, args.join(' '))
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace')
  }
})

test('the pull Secret reads the password from stdin too, for chosen namespaces', async (t) => {
  const r = await runCli(['config', '--registry', 'registry.corp/k8s', '--for', 'secret', '--username', 'u', '--password-stdin', '--namespace', 'apps', '--secret-name', 'corp-pull'], {stdin: 'from-stdin\n'})
  t.is(r.code, 0, r.stderr)
  const secretYaml = r.stdout.split('# ==> ').find((s) => s.startsWith('kubeferry-pull-secret.yaml'))!
  const docs = parseAllDocuments(secretYaml.slice(secretYaml.indexOf('\n') + 1)).map((d) => d.toJS() as Record<string, any>)
  t.is(docs.length, 1)
  t.is(docs[0].metadata.name, 'corp-pull')
  t.is(docs[0].metadata.namespace, 'apps')
  const cfg = JSON.parse(Buffer.from(docs[0].data['.dockerconfigjson'], 'base64').toString('utf8')) as {auths: Record<string, {password: string}>}
  t.is(cfg.auths['registry.corp'].password, 'from-stdin')
})
