// Shared pieces of the end-to-end scenarios (issue 10): the kubeferry CLI as an operator runs it, a
// bundle built by `create` from the harness registry, install.sh against a CRI node's socket, and a
// bridge that lets an isolated (offline) node reach exactly one loopback registry of the harness.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import type { BundleImage, BundleMetadata } from '../../src/bundle/layout.js';
import { criNodeUnsupportedReason, startCriNode, type CriNode, type CriNodeOptions } from '../cri/node.js';
import { peerTest, type PeerName, type Peers, type RegistryPeer } from '../harness/peers.js';
import { KUBEADM_V1_31_6 } from '../images/catalog.js';
import { runCli } from '../helpers/cli.js';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BRIDGE_LISTENER = join(dirname(fileURLToPath(import.meta.url)), 'bridge-listen.js');

/** kubeadm v1.31.6's own images (what `kubeadm config images list` prints), in kubeadm's order. */
export const KUBEADM_IMAGES = KUBEADM_V1_31_6;
/** containerd 1.6's default sandbox image: what the seed's offline node asked for. */
export const NODE_SANDBOX = 'registry.k8s.io/pause:3.6';
export const HOST_PLATFORM = `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args…`; never rejects on a non-zero exit (the result says it). */
export function exec(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((done) => {
    const child = execFile(
      cmd,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 180_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const status = (err as { code?: unknown } | null)?.code;
        const code = err ? (typeof status === 'number' ? status : 1) : 0;
        // A spawn failure or timeout has no stderr of its own: say what happened.
        done({ code, stdout, stderr: stderr || (err && typeof status !== 'number' ? err.message : '') });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

export interface Bundle {
  path: string;
  /** `<name>.install.sh`, written beside the bundle by create. */
  installScript: string;
  meta: BundleMetadata;
  image(name: string): BundleImage;
  /** The config digest of `name` for this machine's platform: containerd's image id for it. */
  hostConfig(name: string): string;
}

/** kubeferry/bundle.json out of the tar (the metadata `inspect` prints). */
export async function readBundle(path: string): Promise<Bundle> {
  const r = await exec('tar', ['-xOf', path, 'kubeferry/bundle.json']);
  if (r.code !== 0) throw new Error(`cannot read kubeferry/bundle.json from ${path}: ${r.stderr}`);
  const meta = JSON.parse(r.stdout) as BundleMetadata;
  const image = (name: string): BundleImage => {
    const found = meta.images.find((i) => i.name === name);
    if (!found) throw new Error(`${name} is not in the bundle (it has ${meta.images.map((i) => i.name).join(', ')})`);
    return found;
  };
  return {
    path,
    installScript: path.replace(/\.tar$/, '') + '.install.sh',
    meta,
    image,
    hostConfig(name) {
      const p = image(name).platforms.find((x) => x.platform === HOST_PLATFORM || x.platform.startsWith(HOST_PLATFORM + '/'));
      if (!p) throw new Error(`${name} has no ${HOST_PLATFORM} in the bundle`);
      return p.config.digest;
    },
  };
}

/**
 * `kubeferry create` of kubeadm v1.31.6's images plus containerd 1.6's sandbox image, both platforms, from the
 * harness's open registry standing in for registry.k8s.io (`--mirror`, canonical names kept).
 */
export async function createBundle(peers: Peers, dir: string, name = 'k8s-v1.31.6'): Promise<Bundle> {
  await mkdir(dir, { recursive: true });
  const output = join(dir, `${name}.tar`);
  const r = await runCli([
    'create', '-o', output, '--no-progress', '--cache-dir', join(dir, 'cache'),
    '--kubernetes-version', 'v1.31.6', '--runtime', 'containerd@1.6',
    '--platform', 'linux/amd64', '--platform', 'linux/arm64',
    '--mirror', `registry.k8s.io=${peers.registries.open.url}`,
  ]);
  if (r.code !== 0) throw new Error(`kubeferry create failed (${r.code}): ${r.stderr}`);
  return readBundle(output);
}

/**
 * The install script written beside the bundle, run with dash (a plain POSIX sh, as on a node) against the
 * node's containerd socket; `--config` is the node's own config.toml (for the sandbox image preflight).
 */
export function runInstall(bundle: Bundle, node: CriNode, extra: string[] = []): Promise<CliResult> {
  return exec('dash', [bundle.installScript, bundle.path, '--runtime', 'containerd', '--address', node.address, '--namespace', 'k8s.io', '--config', node.configPath, ...extra], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TMPDIR: node.dir, LC_ALL: 'C' },
  });
}

/**
 * A serial test needing a CRI node and the harness peers `what`. When the machine cannot run a node (not root, no
 * runc, …) or a peer is missing, the test is registered as skipped with the reason (failed with CI=true).
 */
export function e2eTest(title: string, what: PeerName[], fn: (t: ExecutionContext, peers: Peers) => Promise<void>): void {
  const unsupported = criNodeUnsupportedReason();
  if (!unsupported) return peerTest.serial(title, what, fn);
  if (process.env.CI === 'true' || process.env.CI === '1') test.serial(title, (t) => t.fail(`cannot run a CRI node here: ${unsupported}`));
  else test.skip(`${title} [skipped: cannot run a CRI node here: ${unsupported}]`, () => undefined);
}

/** A private scratch dir for one test, removed by the returned function. */
export async function scratch(name: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `kubeferry-e2e-${name}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Starts a node, runs `fn`, logs containerd's log tail when it fails, always stops the node. */
export async function withNode(t: ExecutionContext, opts: CriNodeOptions, fn: (node: CriNode) => Promise<void>): Promise<void> {
  const node = await startCriNode({ network: 'isolated', ...opts });
  try {
    await fn(node);
  } catch (e) {
    t.log(`containerd log tail (${node.logPath}):\n${(await node.log()).split('\n').slice(-25).join('\n')}`);
    throw e;
  } finally {
    await node.stop();
  }
}

export interface Bridge {
  stop(): Promise<void>;
}

/**
 * Makes `registry` (a harness registry on the host's 127.0.0.1:PORT) answer at the SAME address inside an
 * isolated node's network namespace, and nothing else: a listener started in the namespace with nsenter hands
 * each connection over a unix socket to this process, which connects to the registry. The node stays offline —
 * registry.k8s.io still has no DNS and no route there.
 */
export async function bridgeRegistry(node: CriNode, registry: RegistryPeer): Promise<Bridge> {
  const port = Number(new URL(registry.url).port);
  const socketPath = join(node.dir, `bridge-${port}.sock`);
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect(port, '127.0.0.1');
    sockets.add(inbound).add(outbound);
    inbound.pipe(outbound).pipe(inbound);
    const close = (): void => {
      inbound.destroy();
      outbound.destroy();
      sockets.delete(inbound);
      sockets.delete(outbound);
    };
    inbound.on('error', close).on('close', close);
    outbound.on('error', close).on('close', close);
  });
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(socketPath, () => ok()));

  if (!existsSync(BRIDGE_LISTENER)) throw new Error(`${BRIDGE_LISTENER} is missing (run npx tsc -p .)`);
  const child: ChildProcess = spawn('nsenter', [`--net=/proc/${node.pid}/ns/net`, '--', process.execPath, BRIDGE_LISTENER, String(port), socketPath], {
    // Its stdin is a lifeline: if this process dies without stop(), the listener sees EOF and exits.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const ready = await new Promise<boolean>((done) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (l) => done(l === 'ready'));
    child.once('exit', () => done(false));
    setTimeout(() => done(false), 10_000).unref();
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  if (!ready) {
    await stop();
    throw new Error(`the bridge into node ${node.pid}'s network namespace did not start: ${stderr.trim()}`);
  }
  return { stop };
}

/** The files `kubeferry config -o DIR` wrote, read back. */
export interface GeneratedNodeConfig {
  /** The containerd config.toml fragment as generated (to be merged into the node's config). */
  containerdToml: string;
  /** `sandbox_image` from that fragment. */
  sandboxImage: string;
  /** Where the hosts.toml files were written (`DIR/etc/containerd/certs.d`). */
  hostsDir: string;
  /** `<upstream host>/hosts.toml` files present. */
  hosts: string[];
}

export async function readNodeConfig(dir: string): Promise<GeneratedNodeConfig> {
  const containerdToml = await readFile(join(dir, 'etc/containerd/config.toml'), 'utf8');
  const parsed = parseToml(containerdToml) as { plugins?: Record<string, { sandbox_image?: string }> };
  const sandboxImage = parsed.plugins?.['io.containerd.grpc.v1.cri']?.sandbox_image;
  if (!sandboxImage) throw new Error(`no sandbox_image in the generated config.toml:\n${containerdToml}`);
  const hostsDir = join(dir, 'etc/containerd/certs.d');
  return { containerdToml, sandboxImage, hostsDir, hosts: await readdir(hostsDir) };
}

/**
 * A node configured ONLY with what `config` generated: its config.toml fragment merged over the node's base
 * config, and its certs.d as the registry config_path. The fragment names `/etc/containerd/certs.d`; the files were
 * written under the test's DIR instead, so config_path is the one thing rewritten (as an operator copies the files).
 */
export function nodeFromConfig(cfg: GeneratedNodeConfig, fragment = cfg.containerdToml): CriNodeOptions {
  const toml = parseToml(fragment) as Record<string, any>;
  const registry = toml.plugins['io.containerd.grpc.v1.cri'].registry;
  if (registry?.config_path !== '/etc/containerd/certs.d') throw new Error(`unexpected config_path in the generated config: ${registry?.config_path}`);
  registry.config_path = cfg.hostsDir;
  return { sandboxImage: cfg.sandboxImage, hostsDir: cfg.hostsDir, configExtra: stringifyToml(toml), network: 'isolated' };
}

/**
 * The commented node-level credential template of the generated config.toml, filled in as its comment asks
 * ("uncomment, fill in"): the `[….registry.configs."HOST".auth]` block uncommented and PASSWORD replaced.
 */
export function fillAuthTemplate(fragment: string, host: string, password: string): string {
  const lines = fragment.split('\n');
  const header = `# [plugins."io.containerd.grpc.v1.cri".registry.configs."${host}".auth]`;
  const at = lines.indexOf(header);
  if (at < 0) throw new Error(`no node-level credential template for ${host} in:\n${fragment}`);
  lines[at] = header.slice(2);
  for (let i = at + 1; i < lines.length && lines[i]!.startsWith('#   '); i++) {
    lines[i] = lines[i]!.slice(2).replace('"PASSWORD"', JSON.stringify(password));
  }
  return lines.join('\n');
}
