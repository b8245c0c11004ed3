/**
 * `kubeferry inventory --runtime containerd|docker|podman`: what one node's runtime holds, for a delta that
 * install.sh or `load` can import there. containerd: the namespace's content store (`ctr content ls`), the blobs a
 * delta may leave out; docker, podman: their image stores keep no compressed blobs, so the layer ChainIDs of the
 * images present, which is what `docker load` looks a layer up by (src/runtime/delta-check.ts checks the same).
 */
import type {RuntimeName} from '../bundle/import-plan.js'
import {KubeferryError} from '../oci/errors.js'
import {heldChains} from '../runtime/delta-check.js'
import {resolveRuntime} from '../runtime/detect.js'
import {lastLine, run} from '../runtime/exec.js'
import {parseImageList} from '../runtime/containerd.js'
import {INVENTORY_VERSION, type Inventory} from './inventory-file.js'

export interface RuntimeInventoryOptions {
  runtime: RuntimeName | 'crio'
  address?: string
  namespace?: string
  env?: NodeJS.ProcessEnv
  tool: string
}

export async function takeRuntimeInventory(options: RuntimeInventoryOptions): Promise<Inventory> {
  const target = await resolveRuntime({runtime: options.runtime, address: options.address, namespace: options.namespace, env: options.env})
  const base = {kubeferryInventory: INVENTORY_VERSION, kind: 'runtime', created: new Date().toISOString(), tool: options.tool} as const
  if (target.kind === 'docker' || target.kind === 'podman' || target.kind === 'cri-o') {
    const cli = target.kind === 'docker' ? 'docker' : 'podman'
    const list = await run([cli, 'images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'], {env: target.env})
    if (list.code !== 0) throw new KubeferryError('RUNTIME', `${cli} images failed: ${lastLine(list.stderr)}`, {hint: `check that ${cli} runs`})
    const images = list.stdout.split('\n').map((l) => l.trim().split(' ')).filter((f) => f.length === 2 && !f[0].includes('<none>')).map(([name, digest]) => ({name, digest}))
    return {...base, source: target.description, runtime: cli, images, blobs: [], chains: [...(await heldChains(cli, target.env))]}
  }
  const ctr = (...args: string[]) => run([...target.ctr!, '--address', target.address!, '--namespace', target.namespace, ...args], {env: target.env})
  const [content, list] = await Promise.all([ctr('content', 'ls', '-q'), ctr('images', 'ls')])
  for (const r of [content, list]) if (r.code !== 0) throw new KubeferryError('RUNTIME', `ctr failed: ${lastLine(r.stderr)}`, {hint: 'check --address and that containerd runs'})
  const images = [...parseImageList(list.stdout)].filter(([name]) => !name.includes('@')).map(([name, row]) => ({name, digest: row.digest}))
  const blobs = content.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('sha256:'))
  return {...base, source: target.description, runtime: 'containerd', images, blobs, chains: []}
}
