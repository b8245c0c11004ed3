// Issue 10, scenarios "node import" and "preflight", on a real containerd through the CRI, fully offline:
// the node runs in its own network namespace (loopback only), so any pull it tried would fail.
// The seed's failure itself (a fresh node, nothing imported) is test/cri/cri.test.ts; here it is only
// the "before" of the same node that install.sh then fixes.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { CriCallError, hostNetworkPod, PodSandboxState } from '../cri/client.js';
import type { CriNode } from '../cri/node.js';
import { loadPeers, missingPeer } from '../harness/peers.js';
import { createBundle, e2eTest, KUBEADM_IMAGES, NODE_SANDBOX, runInstall, scratch, withNode, type Bundle } from './helpers.js';

let work: Awaited<ReturnType<typeof scratch>> | undefined;
let bundle: Promise<Bundle> | undefined;

test.before(async () => {
  if (missingPeer(['registries'])) return;
  work = await scratch('node-import');
  bundle = createBundle(loadPeers()!, join(work.dir, 'bundle'));
  bundle.catch(() => undefined); // reported by the tests that use it
});

test.after.always(async () => {
  await work?.remove();
});

async function callError(t: ExecutionContext, p: Promise<unknown>): Promise<CriCallError> {
  const err = await t.throwsAsync(p);
  if (!(err instanceof CriCallError)) throw new Error(`expected a CRI error, got ${String(err)}`);
  return err;
}

/** Runs a pod sandbox as kubelet would, checks it is READY, tears it down; returns its id. */
async function runSandbox(t: ExecutionContext, node: CriNode, name: string): Promise<string> {
  const id = await node.cri.runPodSandbox(hostNetworkPod(name, { namespace: 'kube-system' }));
  t.regex(id, /^[0-9a-f]{64}$/);
  t.is((await node.cri.podSandboxStatus(id))?.state, PodSandboxState.SANDBOX_READY);
  await node.cri.stopPodSandbox(id);
  await node.cri.removePodSandbox(id);
  return id;
}

e2eTest('node import: install.sh (dash) of a `create` bundle → RunPodSandbox succeeds offline; ImageStatus of every kubeadm image has the bundle digests', ['registries'], async (t, peers) => {
  const b = await bundle!;
  // The bundle carries the upstream digests (the harness registry stands in for registry.k8s.io).
  for (const name of [...KUBEADM_IMAGES, NODE_SANDBOX]) {
    t.is<string | undefined, string | undefined>(b.image(name).digest, peers.images.find((i) => i.name === name)?.digest, `${name}: upstream digest in the bundle`);
  }

  await withNode(t, { sandboxImage: NODE_SANDBOX }, async (node) => {
    const before = await callError(t, node.cri.runPodSandbox(hostNetworkPod('before-import')));
    t.log(`RunPodSandbox before install.sh: ${before.details}`);
    t.true(before.details.includes(`failed to get sandbox image "${NODE_SANDBOX}"`), before.details);

    const install = await runInstall(b, node);
    t.log(`install.sh:\n${(install.stdout + install.stderr).trim()}`);
    t.is(install.code, 0, install.stderr);
    t.notRegex(install.stderr, /warning/, 'the node asks for a sandbox image the bundle holds: no preflight warning');
    const images = b.meta.images.length;
    t.true(
      install.stdout.includes(`summary: linux/amd64 into containerd: ${images} images, ${images} imported, 0 already present, 0 missing, 2 pinned`),
      install.stdout,
    );
    for (const pause of ['registry.k8s.io/pause:3.10', NODE_SANDBOX]) {
      t.true(install.stdout.includes(`pinned ${pause} (io.cri-containerd.pinned=pinned)`), install.stdout);
    }

    // What kubelet sees for every kubeadm image: present under its tag, as the bundle's image (no pull needed).
    for (const name of [...KUBEADM_IMAGES, NODE_SANDBOX]) {
      const status = await node.cri.imageStatus(name);
      if (!status) {
        t.fail(`ImageStatus(${name}): not present after install.sh`);
        continue;
      }
      t.is(status.id, b.hostConfig(name), `${name}: image id = the bundle's linux/amd64 config digest`);
      t.deepEqual(status.repoTags, [name]);
      // install.sh also names each image `repo@<bundle digest>` (plain `ctr images import` records only the tag), so a
      // pod spec that pins `image@sha256:<digest>` is found offline too, as after a CRI pull.
      const repo = name.slice(0, name.lastIndexOf(':'));
      t.deepEqual(status.repoDigests, [`${repo}@${b.image(name).digest}`], `${name}: repoDigests`);
      const byDigest = await node.cri.imageStatus(`${repo}@${b.image(name).digest}`);
      t.is(byDigest?.id, b.hostConfig(name), `${name}: found by digest`);
    }
    const pauseStatus = await node.cri.imageStatus(NODE_SANDBOX);
    t.log(`ImageStatus(${NODE_SANDBOX}) after install.sh: id ${pauseStatus?.id} repoTags ${pauseStatus?.repoTags.join(',')} repoDigests [${pauseStatus?.repoDigests.join(',')}] pinned ${pauseStatus?.pinned}`);
    // containerd's own record of the image (what `ctr images ls` prints) holds the bundle's index digest.
    const ls = (await node.ctr(['images', 'ls'])).stdout;
    for (const name of KUBEADM_IMAGES) {
      const line = ls.split('\n').find((l) => l.startsWith(`${name} `));
      t.true(line?.includes(b.image(name).digest), `ctr images ls: ${name} → ${b.image(name).digest}\n${ls}`);
    }
    t.regex(ls.split('\n').find((l) => l.startsWith(`${NODE_SANDBOX} `)) ?? '', /io\.cri-containerd\.pinned=pinned/);

    const id = await runSandbox(t, node, 'after-import');
    t.log(`RunPodSandbox after install.sh: ${id} (SANDBOX_READY)`);

    // A second run changes nothing (idempotent, quiet) and the node still runs pods.
    const again = await runInstall(b, node);
    t.is(again.code, 0, again.stderr);
    t.true(again.stdout.includes(`${images} images, 0 imported, ${images} already present, 0 missing, 0 pinned`), again.stdout);
    t.deepEqual(await node.ctr(['images', 'ls']).then((r) => r.stdout), ls);
    await runSandbox(t, node, 'after-rerun');
  });
});

e2eTest('preflight: a node whose sandbox_image the bundle lacks (pause:0.8.0) gets install.sh\'s warning with the exact line to change, before any pod fails', ['registries'], async (t) => {
  const b = await bundle!;
  const stale = 'registry.k8s.io/pause:0.8.0';
  await withNode(t, { sandboxImage: stale }, async (node) => {
    const config = (await readFile(node.configPath, 'utf8')).split('\n');
    const lineNo = config.findIndex((l) => /^\s*sandbox_image\s*=/.test(l)) + 1;
    t.true(lineNo > 0, 'the node config sets sandbox_image');
    const section = [...config.slice(0, lineNo)].reverse().find((l) => /^\s*\[/.test(l));
    t.is(section?.trim(), '[plugins."io.containerd.grpc.v1.cri"]');

    const install = await runInstall(b, node);
    t.log(`install.sh on a node asking for ${stale}:\n${install.stderr.trim()}`);
    t.is(install.code, 0, 'the import itself succeeds; the warning is about the node config');
    const warnings = install.stderr.split('\n').filter((l) => l.startsWith('kubeferry: warning: '));
    t.is(
      warnings[0],
      `kubeferry: warning: containerd is configured to use sandbox image ${stale} (${node.configPath} line ${lineNo}), which this bundle does not hold: pods will fail with 'failed to get sandbox image' on an offline node.`,
    );
    const fix = /^kubeferry: warning: {3}fix: in (\S+) under (\[.+\]) set: (sandbox_image = "([^"]+)") \(then restart containerd\)$/.exec(warnings[1] ?? '');
    if (!fix) return t.fail(`no fix line in: ${install.stderr}`);
    t.is(fix[1], node.configPath);
    t.is(fix[2], section!.trim());
    const suggested = fix[4]!;
    t.true(
      b.meta.images.some((i) => i.name === suggested && (i.role === 'sandbox' || i.role === 'pause')),
      `the fix names a pause image of the bundle (${suggested})`,
    );

    // The warning was right: the first pod on this node fails exactly as announced.
    const failed = await callError(t, node.cri.runPodSandbox(hostNetworkPod('stale-pause')));
    t.log(`RunPodSandbox with ${stale}: ${failed.details}`);
    t.true(failed.details.includes(`failed to get sandbox image "${stale}"`), failed.details);

    // Applying the fix as written (that exact line in that section) gives a node that runs pods.
    const fixedConfig = [...config];
    fixedConfig[lineNo - 1] = fixedConfig[lineNo - 1]!.replace(/sandbox_image\s*=.*/, fix[3]!);
    t.true(fixedConfig.join('\n').includes(`sandbox_image = "${suggested}"`));
    await withNode(t, { sandboxImage: suggested }, async (fixed) => {
      const again = await runInstall(b, fixed);
      t.is(again.code, 0, again.stderr);
      t.notRegex(again.stderr, /warning/, again.stderr);
      const id = await runSandbox(t, fixed, 'fixed-pause');
      t.log(`RunPodSandbox after the fix (${suggested}): ${id}`);
    });
  });
});
