/** containerd (and k3s/RKE2's embedded one, and nerdctl) through ctr: `images import --platform`, ls/check, label. */
import {readFile} from 'node:fs/promises'
import type {Readable} from 'node:stream'
import {PartedBytes} from '../bundle/parted-bytes.js'
import type {BundleReader} from '../bundle/reader.js'
import {parse as parseToml} from 'smol-toml'
import {PIN_LABEL_KEY, PIN_LABEL_VALUE, type ImportPlan, type PlanImage} from '../bundle/import-plan.js'
import {KubeferryError} from '../oci/errors.js'
import {hostPlatform, formatPlatform} from '../oci/platform.js'
import type {RuntimeAdapter, RuntimeState} from './adapter.js'
import type {RuntimeTarget} from './detect.js'
import {lastLine, run} from './exec.js'
import {K3S_CONTAINERD_ROOT, RKE2_CONTAINERD_ROOT} from './k3s.js'

export const DEFAULT_CONTAINERD_CONFIG = '/etc/containerd/config.toml'

/** `ctr images ls` rows: name, target digest, labels. */
export function parseImageList(text: string): Map<string, {digest: string; labels: string[]}> {
  const out = new Map<string, {digest: string; labels: string[]}>()
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/)
    if (fields.length < 3) continue
    const labels = fields.at(-1)!
    out.set(fields[0], {digest: fields[2], labels: labels === '-' ? [] : labels.split(',')})
  }
  return out
}

/** Names `ctr images check` reports as not complete (for the client's own platform). */
export function parseIncomplete(text: string): Set<string> {
  const out = new Set<string>()
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/)
    if (fields.length >= 4 && fields[3] !== 'complete') out.add(fields[0])
  }
  return out
}

export class ContainerdAdapter implements RuntimeAdapter {
  constructor(
    private readonly target: RuntimeTarget,
    private readonly configFile?: string,
  ) {}

  private ctr(...args: string[]) {
    return this.ctrWith({}, ...args)
  }

  private ctrWith(options: {input?: Readable}, ...args: string[]) {
    return run([...this.target.ctr!, '--address', this.target.address!, '--namespace', this.target.namespace, ...args], {env: this.target.env, ...(options.input ? {input: options.input} : {})})
  }

  async readState(plan: ImportPlan): Promise<RuntimeState> {
    const list = await this.ctr('images', 'ls')
    if (list.code !== 0) throw new KubeferryError('RUNTIME', `ctr images ls failed: ${lastLine(list.stderr)}`)
    const images = parseImageList(list.stdout)
    // Incomplete content (only another platform's blobs) does not count as present; ctr checks its own platform.
    const incomplete = plan.platform === formatPlatform(hostPlatform()) ? parseIncomplete((await this.ctr('images', 'check')).stdout) : new Set<string>()
    const pin = `${PIN_LABEL_KEY}=${PIN_LABEL_VALUE}`
    return {
      present: (image: PlanImage) => images.get(image.name)?.digest === image.digest && !incomplete.has(image.name),
      pinned: (name: string) => images.get(name)?.labels.includes(pin) ?? false,
    }
  }

  async root(): Promise<string> {
    for (const file of [this.configFile, DEFAULT_CONTAINERD_CONFIG]) {
      if (!file) continue
      try {
        const config = parseToml(await readFile(file, 'utf8')) as {root?: unknown}
        if (typeof config.root === 'string' && config.root) return config.root
      } catch {
        // unreadable or not TOML: fall back to the default, as the script does
      }
    }
    if (this.target.kind === 'k3s') return K3S_CONTAINERD_ROOT
    if (this.target.kind === 'rke2') return RKE2_CONTAINERD_ROOT
    return '/var/lib/containerd'
  }

  async space(plan: ImportPlan) {
    return {dir: await this.root(), bytes: plan.bytes * 2, what: `${plan.images.length} images of ${plan.platform} (containerd root)`}
  }

  scratchBytes(): number {
    return 0
  }

  async import({reader, plan}: {reader: BundleReader; plan: ImportPlan}): Promise<string | undefined> {
    // A bundle in parts goes to the runtime's stdin, read across its parts (nothing concatenated on disk).
    const parted = reader.index.bytes instanceof PartedBytes
    const input = parted ? reader.index.bytes.stream(0, reader.index.size, {highWaterMark: 1024 * 1024}) : undefined
    const file = parted ? '-' : reader.path
    const result =
      this.target.kind === 'nerdctl'
        ? await run(['nerdctl', '--address', this.target.address!, '--namespace', this.target.namespace, 'load', '--platform', plan.platform, ...(parted ? [] : ['-i', file])], {env: this.target.env, ...(input ? {input} : {})})
        : await this.ctrWith({input}, 'images', 'import', '--platform', plan.platform, file)
    return result.code === 0 ? undefined : `${result.stdout}${result.stderr}`
  }

  async pin(name: string): Promise<void> {
    const result = await this.ctr('images', 'label', name, `${PIN_LABEL_KEY}=${PIN_LABEL_VALUE}`)
    if (result.code !== 0) throw new KubeferryError('RUNTIME', `could not pin ${name}: ${lastLine(result.stderr)}`)
  }

  async addDigestName(image: PlanImage): Promise<string | undefined> {
    if (image.name.includes('@')) return undefined
    const byDigest = `${image.name.slice(0, image.name.lastIndexOf(':'))}@${image.digest}`
    const result = await this.ctr('images', 'tag', '--force', image.name, byDigest)
    return result.code === 0 ? undefined : `could not add the digest name ${byDigest}: ${lastLine(result.stderr)}`
  }

  shownDigest(image: PlanImage): string {
    return image.digest
  }
}
