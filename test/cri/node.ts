// A Kubernetes "node" for tests: containerd started as a kubelet node has it (CRI plugin on,
// sandbox_image set, registry config_path for hosts.toml), on its own socket, root and state
// in a private temp dir, started and stopped by PID. Pods run on the host network (no CNI).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { criClient, type CriClient } from './client.js';

const run = promisify(execFile);

export const CONTAINERD = '/usr/bin/containerd';
export const CTR = '/usr/bin/ctr';
export const RUNC = '/usr/sbin/runc';
/** The CRI plugin's containerd namespace: where kubelet's images and pods live. */
export const K8S_NAMESPACE = 'k8s.io';

export interface CriNodeOptions {
  /** `[plugins."io.containerd.grpc.v1.cri"] sandbox_image`, e.g. `registry.k8s.io/pause:3.10`. */
  sandboxImage: string;
  /** Directory of `<host>/hosts.toml` files (registry `config_path`); default: an empty `<dir>/certs.d`. */
  hostsDir?: string;
  /**
   * TOML deep-merged over the generated config (its keys win), e.g. node-level registry
   * credentials: `[plugins."io.containerd.grpc.v1.cri".registry.configs."127.0.0.1:5001".auth]`.
   */
  configExtra?: string;
  /**
   * `isolated` (default): containerd runs in its own network namespace holding only loopback —
   * a truly offline node; nothing it does can leave the machine, but it cannot reach registries
   * the tests run either. `host`: the machine's network, so loopback registries are reachable
   * (point every upstream at them with hosts.toml; an unmirrored pull would try the internet).
   */
  network?: 'isolated' | 'host';
  /** Default: overlayfs when an overlay mount works in the node's directory, else native. */
  snapshotter?: 'overlayfs' | 'native';
  /** Readiness timeout in ms (default 30 s). */
  startTimeoutMs?: number;
}

export interface CriNode {
  /** containerd's gRPC socket path: the CRI endpoint (`unix://<address>` for crictl/kubelet). */
  address: string;
  /** containerd `root` (persistent state: content store, snapshots, metadata). */
  root: string;
  /** containerd `state` (runtime state: sockets, task bundles). */
  state: string;
  /** The node's private temp dir (holds config, root, state, log, certs.d). */
  dir: string;
  configPath: string;
  hostsDir: string;
  logPath: string;
  pid: number;
  snapshotter: 'overlayfs' | 'native';
  /** A CRI client on this node (closed by stop()). */
  cri: CriClient;
  /** `ctr --address <sock> -n k8s.io <args…>`; rejects with stderr on failure. */
  ctr(args: string[], opts?: { namespace?: string }): Promise<{ stdout: string; stderr: string }>;
  /** `ctr -n k8s.io images import <tar>`, as an operator would import a bundle. */
  importImages(tarPath: string, extraArgs?: string[]): Promise<string>;
  /** containerd's log so far. */
  log(): Promise<string>;
  /** Removes every pod sandbox, stops containerd by PID, reaps its shims, unmounts and deletes the dir. */
  stop(): Promise<void>;
}

/** What this machine lacks to run a pod sandbox, or null when it has it all. */
export function criNodeUnsupportedReason(): string | null {
  if (process.platform !== 'linux') return `pod sandboxes need Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'containerd with the CRI plugin needs root (uid 0)';
  for (const bin of [CONTAINERD, CTR, RUNC]) {
    if (!existsSync(bin)) return `${bin} is missing (Debian packages containerd and runc)`;
  }
  return null;
}

let overlayVerdict: Promise<boolean> | undefined;

/** Can we mount overlayfs with upper/work dirs inside `dir`'s filesystem? (Overlay on overlay often cannot.) */
async function overlayWorks(dir: string): Promise<boolean> {
  const base = join(dir, 'overlay-probe');
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(base, d)) as [string, string, string, string];
  try {
    for (const d of [lower, upper, work, merged]) await mkdir(d, { recursive: true });
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
    await run('umount', [merged]);
    return true;
  } catch {
    return false;
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    const isTable = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Date);
    out[k] = isTable(b) && isTable(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/** The containerd 1.x (config version 2) file for a node living in `dir`. */
export function criNodeConfig(
  dir: string,
  opts: { sandboxImage: string; hostsDir: string; snapshotter: string; configExtra?: string },
): string {
  const base = {
    version: 2,
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    grpc: { address: join(dir, 'containerd.sock') },
    ttrpc: { address: join(dir, 'containerd.sock.ttrpc') },
    debug: { address: '', level: 'info' },
    metrics: { address: '' },
    plugins: {
      'io.containerd.internal.v1.opt': { path: join(dir, 'opt') },
      'io.containerd.grpc.v1.cri': {
        sandbox_image: opts.sandboxImage,
        // The machine limits OOM score changes: never ask for a lower score than containerd has.
        restrict_oom_score_adj: true,
        // Not the machine's /etc/cni: pods use the host network, no CNI plugin is needed.
        cni: { bin_dir: join(dir, 'cni', 'bin'), conf_dir: join(dir, 'cni', 'net.d') },
        containerd: { snapshotter: opts.snapshotter, default_runtime_name: 'runc' },
        registry: { config_path: opts.hostsDir },
      },
    },
  };
  const merged = opts.configExtra ? deepMerge(base, parseToml(opts.configExtra) as Record<string, unknown>) : base;
  return stringifyToml(merged) + '\n';
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** PIDs of processes whose command line mentions `needle` (this node's shims name its socket). */
async function pidsMentioning(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
      if (cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // gone already
    }
  }
  return pids;
}

/** Mount points at or below `dir`, deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(dir + '/')))
    .map((p) => p.replace(/\\040/g, ' '));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

export async function startCriNode(opts: CriNodeOptions): Promise<CriNode> {
  const reason = criNodeUnsupportedReason();
  if (reason) throw new Error(`cannot start a CRI node here: ${reason}`);
  const dir = await mkdtemp(join(tmpdir(), 'kubeferry-node-'));
  const hostsDir = opts.hostsDir ?? join(dir, 'certs.d');
  await mkdir(hostsDir, { recursive: true });
  await mkdir(join(dir, 'cni', 'net.d'), { recursive: true });
  overlayVerdict ??= overlayWorks(dir);
  const snapshotter = opts.snapshotter ?? ((await overlayVerdict) ? 'overlayfs' : 'native');
  const configPath = join(dir, 'config.toml');
  await writeFile(configPath, criNodeConfig(dir, { sandboxImage: opts.sandboxImage, hostsDir, snapshotter, configExtra: opts.configExtra }));
  const address = join(dir, 'containerd.sock');
  const logPath = join(dir, 'containerd.log');
  const logFd = openSync(logPath, 'a');
  const network = opts.network ?? 'isolated';
  // unshare and sh both exec, so the PID we track is containerd's own. Loopback is brought
  // up so that the offline node behaves like a real one (127.0.0.1 answers, nothing else).
  const [cmd, args] =
    network === 'isolated'
      ? ['unshare', ['--net', '--', '/bin/sh', '-c', '/usr/sbin/ip link set lo up && exec "$0" "$@"', CONTAINERD, '--config', configPath]]
      : [CONTAINERD, ['--config', configPath]];
  const child = spawn(cmd as string, args as string[], { stdio: ['ignore', logFd, logFd], detached: false });
  closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${CONTAINERD}`);
  const exitPromise = new Promise<void>((resolve) => {
    if (exited(child)) resolve();
    else child.once('exit', () => resolve());
  });

  const cri = criClient(address, { timeoutMs: 120_000 });
  const readLog = () => readFile(logPath, 'utf8').catch(() => '');

  const node: CriNode = {
    address,
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    dir,
    configPath,
    hostsDir,
    logPath,
    pid,
    snapshotter,
    cri,
    async ctr(ctrArgs, o = {}) {
      try {
        return await run(CTR, ['--address', address, '-n', o.namespace ?? K8S_NAMESPACE, ...ctrArgs], { maxBuffer: 64 * 1024 * 1024 });
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new Error(`ctr ${ctrArgs.join(' ')}: ${(err.stderr || err.message).trim()}`);
      }
    },
    async importImages(tarPath, extraArgs = []) {
      return (await node.ctr(['images', 'import', ...extraArgs, tarPath])).stdout;
    },
    log: readLog,
    async stop() {
      if (stopped) return stopped;
      stopped = (async () => {
        if (!exited(child)) {
          // Tear pods down through the CRI as kubelet would, so no sandbox outlives the node.
          try {
            const { stdout } = await node.ctr(['containers', 'ls', '-q']);
            for (const id of stdout.split('\n').filter(Boolean)) {
              await cri.stopPodSandbox(id).catch(() => undefined);
              await cri.removePodSandbox(id).catch(() => undefined);
            }
          } catch {
            // containerd already unhealthy: fall through to the kill
          }
        }
        cri.close();
        if (!exited(child)) {
          process.kill(pid, 'SIGTERM');
          const deadline = Date.now() + 10_000;
          while (!exited(child) && Date.now() < deadline) await delay(50);
          if (!exited(child)) process.kill(pid, 'SIGKILL');
          await exitPromise;
        }
        // Shims outlive containerd by design; reap this node's ones (they name its socket).
        for (const shim of await pidsMentioning(address)) {
          try {
            process.kill(shim, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        for (const m of await mountsUnder(dir)) {
          await run('umount', [m]).catch(() => run('umount', ['-l', m]).catch(() => undefined));
        }
        await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      })();
      return stopped;
    },
  };
  let stopped: Promise<void> | undefined;

  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  const probe = criClient(address, { timeoutMs: 2_000 });
  try {
    await waitReady();
  } finally {
    probe.close();
  }
  return node;

  async function waitReady(): Promise<void> {
    for (;;) {
      if (exited(child)) {
        const log = await readLog();
        await node.stop();
        throw new Error(`containerd exited during start (code ${child.exitCode ?? child.signalCode}):\n${log.split('\n').slice(-15).join('\n')}`);
      }
      if (existsSync(address)) {
        try {
          await probe.version();
          return;
        } catch {
          // CRI plugin not serving yet
        }
      }
      if (Date.now() > deadline) {
        const log = await readLog();
        await node.stop();
        throw new Error(`containerd's CRI did not answer Version within the timeout:\n${log.split('\n').slice(-15).join('\n')}`);
      }
      await delay(100);
    }
  }
}
