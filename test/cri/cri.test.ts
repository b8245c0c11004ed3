// The seed's failure on a real runtime, through the CRI as kubelet sees it, and the
// sandbox that runs once the pause image is on the node.
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { CriCallError, hostNetworkPod, PodSandboxState } from './client.js';
import { criNodeConfig, criNodeUnsupportedReason, startCriNode, type CriNode } from './node.js';
import { loadPeers, type TestImage } from '../harness/peers.js';
import { buildImageSet } from '../images/builder.js';
import { writeImagesArchive } from './oci-archive.js';
import { parse as parseToml } from 'smol-toml';

const PAUSE = 'registry.k8s.io/pause:3.10';
const unsupported = criNodeUnsupportedReason();
const inCI = process.env.CI === 'true' || process.env.CI === '1';

/** A test that needs a real node; skipped with the machine's reason outside CI, failed in CI. */
function nodeTest(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  if (!unsupported) test(title, fn);
  else if (inCI) test(title, (t) => t.fail(`cannot run a CRI node here: ${unsupported}`));
  else test.skip(`${title} [skipped: ${unsupported}]`, () => undefined);
}

async function withNode(t: ExecutionContext, opts: Parameters<typeof startCriNode>[0], fn: (node: CriNode) => Promise<void>): Promise<void> {
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

async function callError(t: ExecutionContext, p: Promise<unknown>): Promise<CriCallError> {
  const err = await t.throwsAsync(p);
  t.true(err instanceof CriCallError, `expected a CRI error, got ${String(err)}`);
  return err as CriCallError;
}

test('node config: CRI plugin as a kubelet node has it, extra TOML merged over it', (t) => {
  const text = criNodeConfig('/tmp/n', {
    sandboxImage: PAUSE,
    hostsDir: '/tmp/n/certs.d',
    snapshotter: 'native',
    configExtra: '[plugins."io.containerd.grpc.v1.cri".registry.configs."127.0.0.1:5001".auth]\nusername = "u"\n',
  });
  const cfg = parseToml(text) as any;
  t.is(cfg.version, 2);
  t.is(cfg.grpc.address, '/tmp/n/containerd.sock');
  const cri = cfg.plugins['io.containerd.grpc.v1.cri'];
  t.is(cri.sandbox_image, PAUSE);
  t.true(cri.restrict_oom_score_adj);
  t.is(cri.registry.config_path, '/tmp/n/certs.d');
  t.is(cri.registry.configs['127.0.0.1:5001'].auth.username, 'u');
  t.is(cri.containerd.snapshotter, 'native');
});

nodeTest('seed failure: a fresh offline node cannot start a pod — RunPodSandbox names the sandbox image pull', async (t) => {
  await withNode(t, { sandboxImage: PAUSE }, async (node) => {
    const v = await node.cri.version();
    t.is(v.runtimeName, 'containerd');
    t.is(v.runtimeApiVersion, 'v1');
    t.is(await node.cri.imageStatus(PAUSE), null, 'nothing imported yet');

    const err = await callError(t, node.cri.runPodSandbox(hostNetworkPod('seed')));
    t.log(`RunPodSandbox (before): ${err.details}`);
    t.is(err.method, 'RunPodSandbox');
    t.true(err.details.includes(`failed to get sandbox image "${PAUSE}"`), err.details);
    t.true(err.details.includes(`failed to pull image "${PAUSE}"`), err.details);
    // The pull went for the real upstream and found no network (the node is offline).
    t.regex(err.details, /https:\/\/registry\.k8s\.io\/v2\/pause\/manifests\/3\.10/);
    t.regex(err.details, /lookup registry\.k8s\.io|network is unreachable|no such host/);
    // Nothing was left behind: no sandbox container, no image.
    t.is((await node.ctr(['containers', 'ls', '-q'])).stdout.trim(), '');
    t.deepEqual(await node.cri.listImages(), []);
  });
});

/**
 * The official test images (test/images/builder.ts): taken from the harness run when there is one
 * (`loadPeers().imageDir`), else built here — only the pause, in a few hundred milliseconds.
 */
async function pauseFromTestImages(scratch: string): Promise<{ layoutDir: string; image: TestImage }> {
  const peers = loadPeers();
  const fromPeers = peers?.images.find((i) => i.name === PAUSE);
  if (peers && fromPeers) return { layoutDir: peers.imageDir, image: fromPeers };
  const set = await buildImageSet({ dir: scratch, only: [PAUSE] });
  return { layoutDir: set.dir, image: set.images.find((i) => i.name === PAUSE)! };
}

nodeTest('with the runnable pause imported, RunPodSandbox starts a host-network sandbox; Stop/Remove clean up', async (t) => {
  await withNode(t, { sandboxImage: PAUSE }, async (node) => {
    const { layoutDir, image } = await pauseFromTestImages(join(node.dir, 'test-images'));
    const host = image.platforms.find((p) => p.runnable);
    if (!host) return t.fail(`the test image builder made no runnable platform of ${PAUSE} (is busybox-static installed?)`);
    t.true(image.platforms.length >= 2, 'a multi-platform index, as upstream');
    const archive = join(node.dir, 'pause.tar');
    await writeImagesArchive(layoutDir, [image], archive);
    // --digests + --base-name also record `name@digest`, as a CRI pull would: kubelet then sees repo digests.
    const out = await node.importImages(archive, ['--digests', '--base-name', 'registry.k8s.io/pause']);
    t.true(out.includes(PAUSE), out);

    const status = await node.cri.imageStatus(PAUSE);
    t.truthy(status, 'ImageStatus sees the imported image');
    t.log(`ImageStatus(${PAUSE}): id ${status!.id} repoDigests ${status!.repoDigests.join(' ')}`);
    t.is(status!.id, host.config, "containerd's image id is the host platform's config digest");
    t.deepEqual(status!.repoTags, [PAUSE]);
    t.deepEqual(status!.repoDigests, [`registry.k8s.io/pause@${image.digest}`], 'the upstream index digest');
    t.deepEqual((await node.cri.imageStatus(`registry.k8s.io/pause@${image.digest}`))?.id, host.config);
    t.deepEqual(
      (await node.cri.listImages()).map((i) => i.id),
      [host.config],
    );

    const pod = hostNetworkPod('ferry-sandbox', { namespace: 'kube-system', attempt: 1 });
    const id = await node.cri.runPodSandbox(pod);
    t.log(`RunPodSandbox (after import): ${id}`);
    t.regex(id, /^[0-9a-f]{64}$/);
    const running = await node.cri.podSandboxStatus(id);
    t.is(running?.state, PodSandboxState.SANDBOX_READY);
    t.deepEqual(running?.metadata, pod.metadata);
    t.is(running?.labels['io.kubernetes.pod.name'], 'ferry-sandbox');

    // The sandbox is a real process running the image's entrypoint, in the node's network namespace.
    const config = JSON.parse(await readFile(join(layoutDir, 'blobs', 'sha256', host.config.slice(7)), 'utf8'));
    const expected = [...(config.config.Entrypoint ?? []), ...(config.config.Cmd ?? [])];
    t.is(expected[0], '/bin/busybox');
    const tasks = (await node.ctr(['tasks', 'ls'])).stdout;
    const line = tasks.split('\n').find((l) => l.startsWith(id));
    t.truthy(line, tasks);
    t.regex(line!, /RUNNING/);
    const pid = Number(line!.split(/\s+/)[1]);
    // RUNNING is reported once `runc start` returns; the container's init may still be `runc init` for a moment
    // before it execs the entrypoint (seen once in a loaded run), so wait for that exec, then compare.
    const readCmdline = async (): Promise<string[]> => (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
    let cmdline = await readCmdline();
    for (let tries = 0; cmdline[0] === 'runc' && cmdline[1] === 'init' && tries < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      cmdline = await readCmdline();
    }
    t.deepEqual(cmdline, expected);
    t.is(await readlink(`/proc/${pid}/ns/net`), await readlink(`/proc/${node.pid}/ns/net`), 'NamespaceMode.NODE network');
    t.not(await readlink(`/proc/${pid}/ns/pid`), await readlink(`/proc/${node.pid}/ns/pid`), 'pod PID namespace');

    await node.cri.stopPodSandbox(id);
    t.is((await node.cri.podSandboxStatus(id))?.state, PodSandboxState.SANDBOX_NOTREADY);
    await t.throwsAsync(readFile(`/proc/${pid}/cmdline`), undefined, 'the sandbox process is gone');
    await node.cri.stopPodSandbox(id); // idempotent, as kubelet expects
    await node.cri.removePodSandbox(id);
    const gone = await callError(t, node.cri.podSandboxStatus(id));
    t.regex(gone.details, /not found|does not exist/i);
    t.is((await node.ctr(['containers', 'ls', '-q'])).stdout.trim(), '');

    // RemoveImage through the CRI leaves the node without the pause: the seed's failure again.
    await node.cri.removeImage(PAUSE);
    t.is(await node.cri.imageStatus(PAUSE), null);
    const again = await callError(t, node.cri.runPodSandbox(hostNetworkPod('after-remove')));
    t.true(again.details.includes(`failed to get sandbox image "${PAUSE}"`), again.details);
  });
});

nodeTest('PullImage with an AuthConfig reaches the runtime; an offline node answers with the pull error', async (t) => {
  await withNode(t, { sandboxImage: PAUSE }, async (node) => {
    const err = await callError(
      t,
      node.cri.pullImage('127.0.0.1:9/private/app:1', { username: 'u', password: 'secret-pw', serverAddress: '127.0.0.1:9' }),
    );
    t.is(err.method, 'PullImage');
    t.true(err.details.includes('failed to pull and unpack image "127.0.0.1:9/private/app:1"'), err.details);
    t.regex(err.details, /127\.0\.0\.1:9.*connection refused/);
    t.false(err.message.includes('secret-pw'), 'the password never appears in the error');
  });
});
