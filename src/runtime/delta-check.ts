/**
 * A delta bundle (create --base) on a node: before anything is imported, the runtime must hold every layer the delta
 * relies on for this platform, the same check as install.sh's 35-delta-check.sh. containerd: the blob in the
 * namespace's content store (`ctr content ls -q`), since `ctr import` uses it there and fails at unpack without it
 * (after creating the image records). docker, podman: the layer chain among the images present, since `docker load`
 * looks a layer up by ChainID before it opens the layer's file.
 */
import {chainIds} from '../bundle/delta.js'
import {EXIT, type ImportPlan} from '../bundle/import-plan.js'
import type {BundleMetadata} from '../bundle/layout.js'
import {KubeferryError} from '../oci/errors.js'
import type {RuntimeTarget} from './detect.js'
import {lastLine, run} from './exec.js'

/** The layer chains of every image in a docker or podman store. */
export async function heldChains(cli: 'docker' | 'podman', env: NodeJS.ProcessEnv | undefined): Promise<Set<string>> {
  const ids = await run([cli, 'images', '-aq', '--no-trunc'], {env})
  if (ids.code !== 0) throw new KubeferryError('RUNTIME', `${cli} images failed: ${lastLine(ids.stderr)}`, {hint: `check that ${cli} runs`})
  const unique = [...new Set(ids.stdout.split('\n').map((l) => l.trim()).filter(Boolean))]
  const held = new Set<string>()
  if (unique.length === 0) return held
  const inspect = await run([cli, 'image', 'inspect', '--format', '{{range .RootFS.Layers}}{{.}} {{end}}', ...unique], {env})
  for (const line of inspect.stdout.split('\n')) for (const chain of chainIds(line.trim().split(/\s+/).filter(Boolean))) held.add(chain)
  return held
}

/** What the runtime holds, as the keys a relied-on layer is checked by (blob digests or ChainIDs). */
async function heldKeys(target: RuntimeTarget): Promise<{by: 'digest' | 'chainId'; held: Set<string>}> {
  if (target.kind === 'docker') return {by: 'chainId', held: await heldChains('docker', target.env)}
  if (target.kind === 'podman' || target.kind === 'cri-o') return {by: 'chainId', held: await heldChains('podman', target.env)}
  const result = await run([...target.ctr!, '--address', target.address!, '--namespace', target.namespace, 'content', 'ls', '-q'], {env: target.env})
  if (result.code !== 0) throw new KubeferryError('RUNTIME', `cannot list containerd's content store: ${lastLine(result.stderr)}`, {exitCode: EXIT.noRuntime})
  return {by: 'digest', held: new Set(result.stdout.split('\n').map((l) => l.trim()).filter(Boolean))}
}

/** Refuses a delta made for push only (against a registry inventory): a node cannot rely on a registry's blobs. */
export function assertDeltaForNodes(meta: BundleMetadata): void {
  const delta = meta.delta
  if (delta && !delta.for.includes('load')) {
    throw new KubeferryError('BUNDLE_INVALID', `this is a delta bundle made against a ${delta.base.kind} (${delta.base.name}): it is for \`kubeferry push\` into that registry, not for a node; nothing was imported`, {
      hint: 'push it into the registry it was made against, or make the node its own delta with `kubeferry inventory --runtime …` and `create --base`',
      exitCode: EXIT.missingBase,
    })
  }
}

/** Throws, naming the images, when the runtime lacks a layer the delta relies on for the plan's platform. */
export async function assertRuntimeHoldsRelied(target: RuntimeTarget, plan: ImportPlan, say: (line: string) => void): Promise<void> {
  if (plan.relies.length === 0) return
  const {by, held} = await heldKeys(target)
  const missing = [...new Set(plan.relies.filter((r) => !held.has(by === 'digest' ? r.digest : r.chainId)).map((r) => r.image))].sort()
  if (missing.length > 0) {
    throw new KubeferryError('NOT_FOUND', `this delta bundle relies on layers that ${target.kind} does not hold; missing for: ${missing.join(', ')}. Nothing was imported`, {
      hint: 'import its base bundle first (or carry a full bundle, or a delta made against `kubeferry inventory --runtime` of this node)',
      exitCode: EXIT.missingBase,
    })
  }
  say(`kubeferry: delta bundle: ${target.kind} holds the ${plan.relies.length} layer uses it relies on`)
}
