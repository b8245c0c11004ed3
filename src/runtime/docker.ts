/**
 * docker: `docker load` of the bundle itself for the docker platform; for another platform the bundle minus its
 * end-of-archive marker followed by `kubeferry/docker/<slug>.tar` (see layout.ts). Checked by image id = config digest.
 */
import {PassThrough, type Readable} from 'node:stream'
import {END_OF_ARCHIVE_BYTES} from '../bundle/layout.js'
import type {ImportPlan, PlanImage} from '../bundle/import-plan.js'
import type {BundleReader} from '../bundle/reader.js'
import {KubeferryError} from '../oci/errors.js'
import type {ImportContext, RuntimeAdapter, RuntimeState} from './adapter.js'
import type {RuntimeTarget} from './detect.js'
import {run} from './exec.js'

/** The docker archive of the plan's platform as one stream. */
export function dockerArchiveStream(reader: BundleReader, plan: ImportPlan): Readable {
  if (plan.docker.source === 'root') return reader.index.bytes.stream(0, reader.index.size, {highWaterMark: 1024 * 1024})
  const fragment = reader.entry(plan.docker.path)
  if (!fragment) throw new KubeferryError('BUNDLE_INVALID', `${reader.path}: "${plan.docker.path}" is missing; docker cannot load ${plan.platform}`, {hint: 'rebuild the bundle with kubeferry create'})
  const out = new PassThrough()
  const head = reader.index.bytes.stream(0, reader.index.size - END_OF_ARCHIVE_BYTES, {highWaterMark: 1024 * 1024})
  head.on('error', (error) => out.destroy(error))
  head.pipe(out, {end: false})
  head.on('end', () => {
    const tail = reader.openEntry(fragment)
    tail.on('error', (error) => out.destroy(error))
    tail.pipe(out)
  })
  return out
}

export class DockerAdapter implements RuntimeAdapter {
  constructor(private readonly target: RuntimeTarget) {}

  async readState(plan: ImportPlan): Promise<RuntimeState> {
    const ids = new Map<string, string>()
    for (const image of plan.images) {
      const result = await run(['docker', 'image', 'inspect', '--format', '{{.Id}}', image.name], {env: this.target.env})
      if (result.code === 0) ids.set(image.name, result.stdout.trim())
    }
    return {present: (image: PlanImage) => ids.get(image.name) === image.configDigest, pinned: () => false}
  }

  async space(plan: ImportPlan, bundleSize: number) {
    const info = await run(['docker', 'info', '--format', '{{.DockerRootDir}}'], {env: this.target.env})
    const dir = info.stdout.trim()
    // docker load unpacks the whole tar into its own tmp first
    return info.code === 0 && dir ? {dir, bytes: bundleSize + plan.bytes * 2, what: `docker load of the bundle (docker root)`} : undefined
  }

  scratchBytes(): number {
    return 0
  }

  async import({reader, plan}: ImportContext): Promise<string | undefined> {
    const result = await run(['docker', 'load'], {env: this.target.env, input: dockerArchiveStream(reader, plan)})
    return result.code === 0 ? undefined : `${result.stdout}${result.stderr}`
  }

  shownDigest(image: PlanImage): string {
    return `(image id ${image.configDigest})`
  }
}
