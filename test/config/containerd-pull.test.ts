/**
 * Proof that the generated hosts.toml works: push a bundle under a prefix into the open registry peer, generate
 * `config --for containerd`, then make the containerd peer pull by CANONICAL names (registry.k8s.io/…, docker.io/…)
 * with nothing but those files (`ctr images pull --hosts-dir`). There is no internet here, so a pull that did not go
 * through the mirror would fail; with a wrong prefix path it would 404. The sandbox image's internal name is pulled
 * too, through the generated entry for the registry itself.
 */
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readFile} from 'node:fs/promises'
import {parse as parseToml} from 'smol-toml'
import {peerTest} from '../harness/peers.js'
import {bundleIndex, createBundle, randomName, run} from '../push/helpers.js'
import {runCli} from '../helpers/cli.js'

peerTest('containerd pulls registry.k8s.io/pause:3.10, the kube images and docker.io/library/busybox by canonical name through the generated hosts.toml', ['registries', 'containerd'], async (t, peers) => {
  const open = peers.registries.open
  const ctrd = peers.containerd!
  const path = await createBundle(open.host)
  const images = await bundleIndex(path)
  const dest = `${open.host}/${randomName('node')}/k8s`
  const pushed = await runCli(['push', path, dest])
  t.is(pushed.code, 0, pushed.stderr)

  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-node-'))
  const cfg = await runCli(['config', '--registry', dest, '--bundle', path, '--for', 'containerd', '--insecure-registry', open.host, '-o', dir])
  t.is(cfg.code, 0, cfg.stderr)
  const hostsDir = join(dir, 'etc/containerd/certs.d')
  const containerdToml = parseToml(await readFile(join(dir, 'etc/containerd/config.toml'), 'utf8')) as Record<string, any>
  const sandbox = containerdToml.plugins['io.containerd.grpc.v1.cri'].sandbox_image as string
  t.is(sandbox, `${dest}/pause:3.10`)

  const ns = randomName('kf-config')
  const ctr = (...args: string[]) => run('ctr', ['--address', ctrd.address, '-n', ns, ...args], {timeoutMs: 120_000})
  const wanted = [
    'registry.k8s.io/pause:3.10',
    'registry.k8s.io/kube-apiserver:v1.31.6',
    'registry.k8s.io/kube-proxy:v1.31.6',
    'registry.k8s.io/coredns/coredns:v1.11.3',
    'docker.io/library/busybox:1.36',
  ]
  try {
    for (const name of wanted) {
      const r = await ctr('images', 'pull', '--hosts-dir', hostsDir, name)
      t.is(r.code, 0, `${name}: ${r.stderr}`)
    }
    // Without the hosts dir the same pull cannot work (no internet): the config is what made it succeed.
    const without = await ctr('images', 'pull', 'registry.k8s.io/etcd:3.5.15-0')
    t.not(without.code, 0)
    const internal = await ctr('images', 'pull', '--hosts-dir', hostsDir, sandbox)
    t.is(internal.code, 0, internal.stderr)

    const ls = await ctr('images', 'ls')
    t.is(ls.code, 0, ls.stderr)
    for (const name of [...wanted, sandbox]) {
      const line = ls.stdout.split('\n').find((l) => l.startsWith(`${name} `))
      t.truthy(line, `${name} listed`)
      const upstream = images.find((i) => i.name === (name === sandbox ? 'registry.k8s.io/pause:3.10' : name))!
      t.true(line!.includes(upstream.digest), `${name} has the bundle's digest ${upstream.digest}`)
    }
  } finally {
    const list = await ctr('images', 'ls', '-q')
    const names = list.stdout.split('\n').filter(Boolean)
    if (names.length) await ctr('images', 'rm', ...names)
  }
})
