#!/usr/bin/env node
// The last step of the README demo: a real pod sandbox from an imported bundle.
//   node scripts/demo-sandbox.mjs BUNDLE [--install-script FILE] [--sandbox-image REF]
// Starts a private containerd with the CRI plugin as a kubelet node has it, in its own network namespace
// (loopback only: an offline node), asks it for a pod sandbox (the seed's failure), imports BUNDLE with the
// install script under a POSIX sh, asks again (a running sandbox), and stops everything it started.
// When this machine cannot do it (not root, no containerd/runc, no network namespaces) it says why and exits 0.
// Needs the compiled tree (npm run build): it reuses the test harness's node and CRI client from dist/test/cri.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const say = (line = '') => process.stdout.write(`${line}\n`);
const skip = (why) => {
  say(`demo-sandbox: not starting a pod sandbox on this machine: ${why}`);
  process.exit(0);
};

function usage(message) {
  process.stderr.write(`demo-sandbox: ${message}\nusage: node scripts/demo-sandbox.mjs BUNDLE [--install-script FILE] [--sandbox-image REF]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let bundle;
let installScript;
let sandboxImage;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--install-script') installScript = args[++i];
  else if (a === '--sandbox-image') sandboxImage = args[++i];
  else if (a === '-h' || a === '--help') usage('a real pod sandbox from a bundle, on a private offline containerd');
  else if (!a.startsWith('-') && !bundle) bundle = a;
  else usage(`unknown argument ${a}`);
}
if (!bundle) usage('BUNDLE is required');
bundle = resolve(bundle);
installScript = resolve(installScript ?? bundle.replace(/\.tar$/, '') + '.install.sh');
if (!existsSync(bundle)) usage(`${bundle} does not exist`);
if (!existsSync(installScript)) usage(`${installScript} does not exist (kubeferry create writes it beside the bundle)`);

const nodeModule = join(root, 'dist/test/cri/node.js');
const clientModule = join(root, 'dist/test/cri/client.js');
if (!existsSync(nodeModule) || !existsSync(clientModule)) skip(`${nodeModule} is missing (run npm run build first)`);
const { criNodeUnsupportedReason, startCriNode } = await import(pathToFileURL(nodeModule).href);
const { CriCallError, hostNetworkPod, PodSandboxState } = await import(pathToFileURL(clientModule).href);

const unsupported = criNodeUnsupportedReason();
if (unsupported) skip(unsupported);
const shell = ['/bin/dash', '/bin/sh'].find((s) => existsSync(s));
if (!shell) skip('no POSIX sh (/bin/dash or /bin/sh) to run the install script');
try {
  await run('unshare', ['--net', '--', 'true']);
} catch (e) {
  skip(`cannot create a network namespace for an offline node (unshare --net: ${(e.stderr || e.message).trim()})`);
}

// The node asks for the sandbox image kubeadm's pause in the bundle would give it (what preflight suggests).
if (!sandboxImage) {
  try {
    const { stdout } = await run('tar', ['-xOf', bundle, 'kubeferry/bundle.json'], { maxBuffer: 64 * 1024 * 1024 });
    const images = JSON.parse(stdout).images ?? [];
    sandboxImage = (images.find((i) => i.role === 'pause') ?? images.find((i) => i.role === 'sandbox'))?.name;
  } catch (e) {
    usage(`cannot read kubeferry/bundle.json from ${bundle}: ${e.message}`);
  }
  if (!sandboxImage) usage('the bundle holds no pause image; name one with --sandbox-image');
}

let node;
let stopping;
const stop = () => (stopping ??= node ? node.stop() : Promise.resolve());
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    stop().finally(() => process.exit(130));
  });
}

let code = 0;
try {
  node = await startCriNode({ sandboxImage, network: 'isolated' });
  const version = await node.cri.version();
  say(`node: ${version.runtimeName} ${version.runtimeVersion} (CRI ${version.runtimeApiVersion}) on ${node.address}, own network namespace (offline), sandbox_image = "${sandboxImage}"`);

  say(`\nCRI RunPodSandbox (what kubelet asks for a new pod), before the import:`);
  try {
    const id = await node.cri.runPodSandbox(hostNetworkPod('demo-before'));
    say(`unexpected: the sandbox ran before the import (${id})`);
  } catch (e) {
    if (!(e instanceof CriCallError)) throw e;
    say(`runtime: ${e.details}`);
  }

  say(`\n$ sh ${installScript} ${bundle} --runtime containerd --address ${node.address}`);
  const install = await run(shell, [installScript, bundle, '--runtime', 'containerd', '--address', node.address, '--namespace', 'k8s.io', '--config', node.configPath], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TMPDIR: node.dir, LC_ALL: 'C' },
    maxBuffer: 64 * 1024 * 1024,
  }).catch((e) => {
    throw new Error(`install script failed (exit ${e.code}):\n${e.stdout}${e.stderr}`);
  });
  process.stdout.write(install.stdout + install.stderr);

  say(`\nCRI RunPodSandbox, after the import:`);
  const id = await node.cri.runPodSandbox(hostNetworkPod('demo-after', { namespace: 'kube-system' }));
  const status = await node.cri.podSandboxStatus(id);
  const state = status?.state === PodSandboxState.SANDBOX_READY ? 'SANDBOX_READY' : `state ${status?.state}`;
  say(`runtime: pod sandbox ${id} ${state}`);
  const image = await node.cri.imageStatus(sandboxImage);
  say(`runtime: ImageStatus ${sandboxImage} → id ${image?.id}`);
  await node.cri.stopPodSandbox(id);
  await node.cri.removePodSandbox(id);
  say('runtime: pod sandbox stopped and removed');
  if (status?.state !== PodSandboxState.SANDBOX_READY) code = 1;
} catch (e) {
  code = 1;
  process.stderr.write(`demo-sandbox: ${e instanceof CriCallError ? `${e.method}: ${e.details}` : e.message}\n`);
  if (node) {
    const log = await readFile(node.logPath, 'utf8').catch(() => '');
    if (log) process.stderr.write(`containerd log tail:\n${log.split('\n').slice(-10).join('\n')}\n`);
  }
} finally {
  await stop();
}
process.exit(code);
