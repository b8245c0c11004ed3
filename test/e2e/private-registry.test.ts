// Issue 10, scenario "private registry" (seeds 003/004): the bundle pushed into the harness's htpasswd registry.
// PullImage with the AuthConfig kubelet would build from the pull Secret that `kubeferry config` generated works,
// without it the registry refuses; the sandbox image never gets a pull secret, so RunPodSandbox needs the node-level
// credential `config` recommends — refused without it, running with it. Offline node, registry port bridged in.
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { parseAllDocuments } from 'yaml';
import { readFile } from 'node:fs/promises';
import { CriCallError, hostNetworkPod, PodSandboxState, type AuthConfig } from '../cri/client.js';
import type { CriNode } from '../cri/node.js';
import { loadPeers, missingPeer } from '../harness/peers.js';
import { runCli } from '../helpers/cli.js';
import {
  bridgeRegistry,
  createBundle,
  e2eTest,
  fillAuthTemplate,
  nodeFromConfig,
  readNodeConfig,
  scratch,
  withNode,
  type Bundle,
  type GeneratedNodeConfig,
} from './helpers.js';

interface Setup {
  bundle: Bundle;
  dest: string;
  config: GeneratedNodeConfig;
  /** What `config` printed on stderr (the node-level auth warning). */
  configStderr: string;
  secretYaml: string;
}

let work: Awaited<ReturnType<typeof scratch>> | undefined;
let setup: Promise<Setup> | undefined;

test.before(async () => {
  if (missingPeer(['registries'])) return;
  work = await scratch('private-registry');
  setup = prepare(work.dir);
  setup.catch(() => undefined);
});

test.after.always(async () => {
  await work?.remove();
});

async function prepare(dir: string): Promise<Setup> {
  const peers = loadPeers()!;
  const reg = peers.registries.htpasswd;
  const bundle = await createBundle(peers, join(dir, 'bundle'));
  const dest = `${reg.host}/e2e-${process.pid}/k8s`;
  const push = await runCli(['push', bundle.path, dest, '--username', reg.username!, '--password-stdin'], { stdin: reg.password });
  if (push.code !== 0) throw new Error(`kubeferry push ${dest} failed (${push.code}): ${push.stderr}`);
  const out = join(dir, 'config');
  const r = await runCli(
    ['config', '--registry', dest, '--bundle', bundle.path, '--for', 'containerd', '--for', 'secret', '--insecure-registry', reg.host, '--username', reg.username!, '--password-stdin', '-o', out],
    { stdin: reg.password },
  );
  if (r.code !== 0) throw new Error(`kubeferry config failed (${r.code}): ${r.stderr}`);
  return { bundle, dest, config: await readNodeConfig(out), configStderr: r.stderr, secretYaml: await readFile(join(out, 'kubeferry-pull-secret.yaml'), 'utf8') };
}

/**
 * What kubelet does with an imagePullSecret of type kubernetes.io/dockerconfigjson: finds the `auths` entry whose
 * key matches the image's registry and passes its username/password (decoding `auth` when only that is set) in the
 * CRI AuthConfig. kubelet leaves server_address empty (containerd 1.6 would refuse a bare host:port there).
 */
function authFromSecret(yamlText: string, namespace: string, image: string): AuthConfig {
  const secrets = parseAllDocuments(yamlText).map((d) => d.toJS() as { kind: string; type: string; metadata: { namespace: string }; data: Record<string, string> });
  const secret = secrets.find((s) => s.kind === 'Secret' && s.metadata.namespace === namespace);
  if (!secret) throw new Error(`no Secret for namespace ${namespace}`);
  if (secret.type !== 'kubernetes.io/dockerconfigjson') throw new Error(`Secret type ${secret.type}`);
  const config = JSON.parse(Buffer.from(secret.data['.dockerconfigjson']!, 'base64').toString('utf8')) as { auths: Record<string, { username?: string; password?: string; auth?: string }> };
  const host = image.split('/')[0]!;
  const key = Object.keys(config.auths).find((k) => k.replace(/^https?:\/\//, '').replace(/\/.*$/, '') === host);
  if (!key) throw new Error(`no auths entry for ${host} in the Secret (keys: ${Object.keys(config.auths).join(', ')})`);
  const entry = config.auths[key]!;
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  const [username, ...rest] = Buffer.from(entry.auth ?? '', 'base64').toString('utf8').split(':');
  return { username: username!, password: rest.join(':') };
}

async function withConfiguredNode(t: ExecutionContext, fragment: string | undefined, fn: (node: CriNode) => Promise<void>): Promise<void> {
  const { config } = await setup!;
  await withNode(t, nodeFromConfig(config, fragment), async (node) => {
    const bridge = await bridgeRegistry(node, loadPeers()!.registries.htpasswd);
    try {
      await fn(node);
    } finally {
      await bridge.stop();
    }
  });
}

async function criError(t: ExecutionContext, p: Promise<unknown>): Promise<CriCallError> {
  const err = await t.throwsAsync(p);
  if (!(err instanceof CriCallError)) throw new Error(`expected a CRI error, got ${String(err)}`);
  return err;
}

const UNAUTHORIZED = /401 Unauthorized/;

e2eTest('private registry: PullImage with the AuthConfig decoded from the generated pull Secret succeeds, without it 401; RunPodSandbox gets no secret and fails', ['registries'], async (t) => {
  const { bundle, dest, secretYaml } = await setup!;
  const reg = loadPeers()!.registries.htpasswd;
  const image = `${dest}/kube-proxy:v1.31.6`;
  const auth = authFromSecret(secretYaml, 'kube-system', image);
  t.is(auth.username, reg.username);
  t.is(auth.password, reg.password, 'the Secret decodes to the registry credential');

  await withConfiguredNode(t, undefined, async (node) => {
    const denied = await criError(t, node.cri.pullImage(image));
    t.log(`PullImage(${image}) without AuthConfig: ${denied.details}`);
    t.true(denied.details.includes(`failed to pull and unpack image "${image}"`), denied.details);
    t.regex(denied.details, UNAUTHORIZED);

    const ref = await node.cri.pullImage(image, auth);
    t.log(`PullImage(${image}) with the Secret's AuthConfig: ${ref}`);
    t.is(ref, bundle.hostConfig('registry.k8s.io/kube-proxy:v1.31.6'));
    t.deepEqual((await node.cri.imageStatus(image))?.repoDigests, [`${dest}/kube-proxy@${bundle.image('registry.k8s.io/kube-proxy:v1.31.6').digest}`]);
    t.false(denied.message.includes(reg.password!) || JSON.stringify(await node.cri.listImages()).includes(reg.password!));

    // The sandbox image is pulled by the runtime itself: kubelet never passes a pull secret for it.
    const sandbox = await criError(t, node.cri.runPodSandbox(hostNetworkPod('no-node-credential')));
    t.log(`RunPodSandbox without node-level credential: ${sandbox.details}`);
    t.true(sandbox.details.includes(`failed to get sandbox image "${dest}/pause:3.10"`), sandbox.details);
    t.regex(sandbox.details, UNAUTHORIZED);
  });
});

e2eTest('private registry: the node-level credential `config` recommends (its template filled in) makes RunPodSandbox succeed and kube-proxy pull by canonical name', ['registries'], async (t) => {
  const { bundle, dest, config, configStderr } = await setup!;
  const reg = loadPeers()!.registries.htpasswd;
  t.true(
    configStderr.includes(`containerd 1.6/1.7: [plugins."io.containerd.grpc.v1.cri".registry.configs."${reg.host}".auth] username/password in /etc/containerd/config.toml`),
    configStderr,
  );
  t.notRegex(config.containerdToml, new RegExp(reg.password!), 'the generated config holds no password, only the template');
  const filled = fillAuthTemplate(config.containerdToml, reg.host, reg.password!);

  await withConfiguredNode(t, filled, async (node) => {
    const id = await node.cri.runPodSandbox(hostNetworkPod('node-credential', { namespace: 'kube-system' }));
    t.log(`RunPodSandbox with the node-level credential: ${id}`);
    t.is((await node.cri.podSandboxStatus(id))?.state, PodSandboxState.SANDBOX_READY);
    t.is((await node.cri.imageStatus(`${dest}/pause:3.10`))?.id, bundle.hostConfig('registry.k8s.io/pause:3.10'));
    await node.cri.stopPodSandbox(id);
    await node.cri.removePodSandbox(id);

    // kube-proxy (a DaemonSet in kube-system, usually without pull secrets) by its upstream name, through the mirror.
    const proxy = 'registry.k8s.io/kube-proxy:v1.31.6';
    t.is(await node.cri.pullImage(proxy), bundle.hostConfig(proxy));
    t.deepEqual((await node.cri.imageStatus(proxy))?.repoDigests, [`registry.k8s.io/kube-proxy@${bundle.image(proxy).digest}`]);
  });
});
