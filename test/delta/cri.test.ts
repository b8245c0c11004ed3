/**
 * A delta bundle on a real CRI node (issue 20): containerd with the CRI plugin, offline; the v1.31.0 bundle imported
 * by its install.sh, then the v1.31.6 delta by its own: every image is there with its upstream digest (as kubelet
 * sees it through the CRI) and the pod sandbox runs.
 */
import {rm} from 'node:fs/promises'
import {join} from 'node:path'
import test from 'ava'
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {hostNetworkPod, PodSandboxState} from '../cri/client.js'
import {criNodeUnsupportedReason, startCriNode} from '../cri/node.js'
import {loadPeers, missingPeer} from '../harness/peers.js'
import {create, metadataOf, seedV1310, tempDir, V1_31_0, V1_31_6} from './helpers.js'

const execFileP = promisify(execFile)
const PAUSE = 'registry.k8s.io/pause:3.10'
const unsupported = criNodeUnsupportedReason() ?? missingPeer(['registries'])

const nodeTest = unsupported ? test.skip : test

nodeTest(`the delta onto a CRI node holding v1.31.0: every image with its upstream digest, the pod sandbox runs${unsupported ? ` [skipped: ${unsupported}]` : ''}`, async (t) => {
  const peers = loadPeers()!
  const dir = await tempDir('cri')
  await seedV1310(peers, dir)
  for (const [name, images, extra] of [['v0.tar', V1_31_0, []], ['d6.tar', V1_31_6, ['--base', join(dir, 'v0.tar')]]] as const) {
    const r = await create(peers, dir, join(dir, name), [...images], [...extra])
    t.is(r.code, 0, r.stderr)
  }
  const node = await startCriNode({sandboxImage: PAUSE})
  try {
    const args = (bundle: string) => [join(dir, `${bundle}.install.sh`), join(dir, `${bundle}.tar`), '--runtime', 'containerd', '--address', node.address, '--namespace', 'k8s.io']
    await execFileP('sh', args('v0'))
    const {stdout} = await execFileP('sh', args('d6'))
    t.regex(stdout, /delta bundle: containerd holds the \d+ layer uses it relies on/)
    for (const image of (await metadataOf(join(dir, 'd6.tar'))).images) {
      const status = await node.cri.imageStatus(image.name)
      t.truthy(status, image.name)
      t.true(status!.repoDigests.includes(`${image.name.slice(0, image.name.lastIndexOf(':'))}@${image.digest}`), `${image.name}: ${status!.repoDigests.join(' ')}`)
    }
    const id = await node.cri.runPodSandbox(hostNetworkPod('delta-sandbox', {namespace: 'kube-system', attempt: 1}))
    t.is((await node.cri.podSandboxStatus(id))?.state, PodSandboxState.SANDBOX_READY)
    await node.cri.stopPodSandbox(id)
    await node.cri.removePodSandbox(id)
  } finally {
    await node.stop()
    await rm(dir, {recursive: true, force: true})
  }
})
