// The CRI node pulling from the harness's real registries on loopback: PullImage with the
// AuthConfig kubelet builds from a pull secret, and the sandbox image through a hosts.toml mirror.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { peerTest, type RegistryPeer, type TestImage } from '../harness/peers.js';
import { CriCallError, hostNetworkPod, PodSandboxState } from './client.js';
import { criNodeUnsupportedReason, startCriNode, type CriNode, type CriNodeOptions } from './node.js';

const PAUSE = 'registry.k8s.io/pause:3.10';
const unsupported = criNodeUnsupportedReason();

async function withNode(t: ExecutionContext, opts: CriNodeOptions, fn: (node: CriNode) => Promise<void>): Promise<void> {
  if (unsupported) {
    if (process.env.CI === 'true' || process.env.CI === '1') t.fail(`cannot run a CRI node here: ${unsupported}`);
    else t.pass(`SKIPPED: ${unsupported}`);
    return;
  }
  const node = await startCriNode(opts);
  try {
    await fn(node);
  } catch (e) {
    t.log(`containerd log tail (${node.logPath}):\n${(await node.log()).split('\n').slice(-20).join('\n')}`);
    throw e;
  } finally {
    await node.stop();
  }
}

/** certs.d/<host>/hosts.toml whose `server` is the loopback registry itself: nothing can fall back upstream. */
async function hostsDirFor(dir: string, entries: Record<string, RegistryPeer>): Promise<string> {
  const hostsDir = join(dir, 'certs.d');
  for (const [host, peer] of Object.entries(entries)) {
    await mkdir(join(hostsDir, host), { recursive: true });
    await writeFile(join(hostsDir, host, 'hosts.toml'), `server = "${peer.url}"\n\n[host."${peer.url}"]\n  capabilities = ["pull", "resolve"]\n`);
  }
  return hostsDir;
}

function hostConfig(image: TestImage): string {
  const host = image.platforms.find((p) => p.runnable) ?? image.platforms.find((p) => p.platform.startsWith(`linux/${process.arch === 'x64' ? 'amd64' : process.arch}`));
  if (!host) throw new Error(`no host platform in ${image.name}`);
  return host.config;
}

peerTest.serial('PullImage with the AuthConfig of a pull secret: refused without it, pulled with it', ['registries'], async (t, peers) => {
  const reg = peers.registries.htpasswd;
  const pause = peers.images.find((i) => i.name === PAUSE);
  if (!pause) return t.fail(`the harness pushed no ${PAUSE}`);
  const ref = `${reg.host}/${pause.repository}:${pause.tag}`;
  const scratch = join(peers.runDir, `cri-pull-${process.pid}`);
  await withNode(t, { sandboxImage: PAUSE, network: 'host', hostsDir: await hostsDirFor(scratch, { [reg.host]: reg }) }, async (node) => {
    const denied = await t.throwsAsync(node.cri.pullImage(ref));
    t.true(denied instanceof CriCallError);
    t.log(`PullImage without AuthConfig: ${(denied as CriCallError).details}`);
    t.regex((denied as CriCallError).details, /401 Unauthorized|authorization failed|unauthorized/i);

    const wrong = await t.throwsAsync(node.cri.pullImage(ref, { username: reg.username, password: 'not-the-password' }));
    t.regex((wrong as CriCallError).details, /401 Unauthorized|authorization failed|unauthorized/i);
    t.false(wrong!.message.includes('not-the-password'));

    // kubelet passes username/password decoded from the dockerconfigjson `auths` entry.
    const imageRef = await node.cri.pullImage(ref, { username: reg.username, password: reg.password });
    t.is(imageRef, hostConfig(pause));
    const status = await node.cri.imageStatus(ref);
    t.is(status?.id, hostConfig(pause));
    t.deepEqual(status?.repoDigests, [`${reg.host}/${pause.repository}@${pause.digest}`], 'the registry index digest');

    // ... or only the `auth` field (base64 user:password), as a config.json `auth` carries it. containerd 1.6
    // url-parses server_address and only uses the credentials when its host matches: give it as a URL.
    await node.cri.removeImage(ref);
    t.is(await node.cri.imageStatus(ref), null);
    const auth = Buffer.from(`${reg.username}:${reg.password}`).toString('base64');
    t.is(await node.cri.pullImage(ref, { auth, serverAddress: reg.url }), hostConfig(pause));

    // A bare host:port server_address (a dockerconfigjson key as written) is refused by containerd 1.6.
    await node.cri.removeImage(ref);
    const bare = await node.cri.pullImage(ref, { auth, serverAddress: reg.host }).then(
      () => 'pulled',
      (e: CriCallError) => e.details,
    );
    t.log(`PullImage with server_address "${reg.host}": ${bare}`);
    t.true(bare === 'pulled' || bare.includes('parse server address'), bare);
    t.false(bare.includes(reg.password!));
  });
});

peerTest.serial('sandbox image pulled through a hosts.toml mirror for registry.k8s.io, then the pod runs', ['registries'], async (t, peers) => {
  const mirror = peers.registries.open;
  const pause = peers.images.find((i) => i.name === PAUSE);
  if (!pause) return t.fail(`the harness pushed no ${PAUSE}`);
  const scratch = join(peers.runDir, `cri-mirror-${process.pid}`);
  const hostsDir = await hostsDirFor(scratch, { 'registry.k8s.io': mirror });
  await withNode(t, { sandboxImage: PAUSE, network: 'host', hostsDir }, async (node) => {
    t.is(await node.cri.imageStatus(PAUSE), null);
    const id = await node.cri.runPodSandbox(hostNetworkPod('mirrored'));
    t.is((await node.cri.podSandboxStatus(id))?.state, PodSandboxState.SANDBOX_READY);
    const status = await node.cri.imageStatus(PAUSE);
    t.is(status?.id, hostConfig(pause));
    t.deepEqual(status?.repoDigests, [`registry.k8s.io/pause@${pause.digest}`], 'canonical name, upstream digest');
    await node.cri.stopPodSandbox(id);
    await node.cri.removePodSandbox(id);
  });
});
