// Issue 10, scenario "internal registry" (seeds 000/002): `push` the bundle into the harness's open registry under
// a prefix, then a FRESH node configured only with what `kubeferry config --for containerd` generated (hosts.toml
// files as its certs.d, the sandbox setting merged into its config) runs pods and pulls kube images by canonical
// name. The node is offline (own network namespace): only the registry's port is bridged in (helpers.bridgeRegistry).
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { CriCallError, hostNetworkPod, PodSandboxState } from '../cri/client.js';
import type { CriNode } from '../cri/node.js';
import { loadPeers, missingPeer } from '../harness/peers.js';
import { runCli } from '../helpers/cli.js';
import {
  bridgeRegistry,
  createBundle,
  e2eTest,
  KUBEADM_IMAGES,
  readNodeConfig,
  nodeFromConfig,
  scratch,
  withNode,
  type Bundle,
  type GeneratedNodeConfig,
} from './helpers.js';

interface Setup {
  bundle: Bundle;
  /** REGISTRY/PREFIX given to push and config. */
  dest: string;
  /** config --for containerd (default: the sandbox image by its internal name). */
  internal: GeneratedNodeConfig;
  /** config --for containerd --sandbox-ref upstream. */
  upstream: GeneratedNodeConfig;
  pushOutput: string;
}

let work: Awaited<ReturnType<typeof scratch>> | undefined;
let setup: Promise<Setup> | undefined;

test.before(async () => {
  if (missingPeer(['registries'])) return;
  work = await scratch('internal-registry');
  setup = prepare(work.dir);
  setup.catch(() => undefined); // reported by the tests
});

test.after.always(async () => {
  await work?.remove();
});

async function prepare(dir: string): Promise<Setup> {
  const peers = loadPeers()!;
  const open = peers.registries.open;
  const bundle = await createBundle(peers, join(dir, 'bundle'));
  // A prefix of our own: other test files push into the same registry at the same time.
  const dest = `${open.host}/e2e-${process.pid}/k8s`;
  const push = await runCli(['push', bundle.path, dest]);
  if (push.code !== 0) throw new Error(`kubeferry push ${dest} failed (${push.code}): ${push.stderr}`);
  const configFor = async (name: string, extra: string[]): Promise<GeneratedNodeConfig> => {
    const out = join(dir, name);
    // The registry speaks plain HTTP: an operator names it with --insecure-registry (nodes get http:// endpoints).
    const r = await runCli(['config', '--registry', dest, '--bundle', bundle.path, '--for', 'containerd', '--insecure-registry', open.host, '-o', out, ...extra]);
    if (r.code !== 0) throw new Error(`kubeferry config failed (${r.code}): ${r.stderr}`);
    return readNodeConfig(out);
  };
  return {
    bundle,
    dest,
    internal: await configFor('config-internal', []),
    upstream: await configFor('config-upstream', ['--sandbox-ref', 'upstream']),
    pushOutput: push.stdout + push.stderr,
  };
}

async function withConfiguredNode(t: ExecutionContext, cfg: GeneratedNodeConfig, fn: (node: CriNode) => Promise<void>): Promise<void> {
  await withNode(t, nodeFromConfig(cfg), async (node) => {
    const bridge = await bridgeRegistry(node, loadPeers()!.registries.open);
    try {
      await fn(node);
    } finally {
      await bridge.stop();
    }
  });
}

async function runSandbox(t: ExecutionContext, node: CriNode, name: string): Promise<string> {
  const id = await node.cri.runPodSandbox(hostNetworkPod(name, { namespace: 'kube-system' }));
  t.is((await node.cri.podSandboxStatus(id))?.state, PodSandboxState.SANDBOX_READY);
  await node.cri.stopPodSandbox(id);
  await node.cri.removePodSandbox(id);
  return id;
}

e2eTest('internal registry: a fresh node with only the generated hosts.toml + sandbox setting runs a pod (sandbox pulled from the registry) and pulls registry.k8s.io/kube-proxy:v1.31.6 by canonical name', ['registries'], async (t) => {
  const { bundle, dest, internal } = await setup!;
  t.is(internal.sandboxImage, `${dest}/pause:3.10`, 'the sandbox image by its internal name');
  t.deepEqual(internal.hosts.sort(), [new URL(loadPeers()!.registries.open.url).host, 'registry.k8s.io'].sort());

  await withConfiguredNode(t, internal, async (node) => {
    t.is(await node.cri.imageStatus(internal.sandboxImage), null, 'nothing on the node yet');
    const id = await runSandbox(t, node, 'internal-registry');
    t.log(`RunPodSandbox (sandbox_image ${internal.sandboxImage}): ${id} SANDBOX_READY`);
    const pause = await node.cri.imageStatus(internal.sandboxImage);
    t.is(pause?.id, bundle.hostConfig('registry.k8s.io/pause:3.10'));
    t.deepEqual(pause?.repoDigests, [`${dest}/pause@${bundle.image('registry.k8s.io/pause:3.10').digest}`], 'pulled with the bundle (= upstream) digest');

    // kubelet pulls kube-proxy's DaemonSet image by its upstream name, without any pull secret.
    const proxy = 'registry.k8s.io/kube-proxy:v1.31.6';
    const ref = await node.cri.pullImage(proxy);
    t.log(`PullImage(${proxy}): ${ref}`);
    t.is(ref, bundle.hostConfig(proxy));
    const status = await node.cri.imageStatus(proxy);
    t.deepEqual(status?.repoTags, [proxy]);
    t.deepEqual(status?.repoDigests, [`registry.k8s.io/kube-proxy@${bundle.image(proxy).digest}`], 'canonical name, upstream digest');

    // Every other kubeadm image the same way (static pods name them by upstream name too).
    for (const name of KUBEADM_IMAGES.filter((n) => n !== proxy)) {
      t.is(await node.cri.pullImage(name), bundle.hostConfig(name), name);
    }

    // The mirror is what made it work: a tag the registry does not hold falls back to registry.k8s.io, which an
    // offline node cannot reach (no DNS, no route).
    const missing = await t.throwsAsync(node.cri.pullImage('registry.k8s.io/kube-proxy:v0.0.0-not-pushed'));
    t.true(missing instanceof CriCallError);
    t.log(`PullImage of a tag the registry lacks: ${(missing as CriCallError).details}`);
    t.regex((missing as CriCallError).details, /registry\.k8s\.io.*(network is unreachable|no such host|not found)/);

    // Only the bridged port is reachable: another registry on the host's loopback is not (the node is offline).
    const other = loadPeers()!.registries.htpasswd.host;
    const unreachable = await t.throwsAsync(node.cri.pullImage(`${other}/pause:3.10`));
    t.regex((unreachable as CriCallError).details, new RegExp(`${other.replace(/\./g, '\\.')}.*connection refused`));
  });
});

e2eTest('internal registry: with --sandbox-ref upstream the node asks for registry.k8s.io/pause:3.10 and gets it through the hosts.toml mirror', ['registries'], async (t) => {
  const { bundle, upstream } = await setup!;
  t.is(upstream.sandboxImage, 'registry.k8s.io/pause:3.10');
  await withConfiguredNode(t, upstream, async (node) => {
    const id = await runSandbox(t, node, 'upstream-name');
    t.log(`RunPodSandbox (sandbox_image ${upstream.sandboxImage} via the mirror): ${id} SANDBOX_READY`);
    const pause = await node.cri.imageStatus(upstream.sandboxImage);
    t.is(pause?.id, bundle.hostConfig('registry.k8s.io/pause:3.10'));
    t.deepEqual(pause?.repoDigests, [`registry.k8s.io/pause@${bundle.image('registry.k8s.io/pause:3.10').digest}`]);
  });
});
