/**
 * podman and CRI-O (containers-storage): this platform's blobs are copied (verified) from the bundle into an OCI layout
 * under TMPDIR, then `skopeo copy oci:DIR:NAME containers-storage:NAME` (upstream manifest kept) or, without skopeo,
 * `podman pull oci:DIR:NAME` + `podman tag ID NAME`. Checked by image id (podman) or the stored manifest's digest (skopeo).
 */
import {createHash} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {blobPath, INDEX_FILE, OCI_LAYOUT_FILE} from '../bundle/layout.js'
import type {ImportPlan, PlanImage} from '../bundle/import-plan.js'
import type {ImportContext, RuntimeAdapter, RuntimeState} from './adapter.js'
import type {RuntimeTarget} from './detect.js'
import {run, which} from './exec.js'

/** The scratch OCI layout's directory, and the name podman 4.3 gives what it pulls from it (see import()). */
const LAYOUT_DIR = 'kubeferry-oci'
const PATH_NAME = `localhost/${LAYOUT_DIR}:latest`

export function overrideArgs(platform: string): string[] {
  const [os, arch, variant] = platform.split('/')
  return ['--override-os', os, '--override-arch', arch, ...(variant ? ['--override-variant', variant] : [])]
}

export class ContainersStorageAdapter implements RuntimeAdapter {
  constructor(private readonly target: RuntimeTarget) {}

  private get usePodman(): boolean {
    return which('podman', this.target.env) !== undefined
  }

  async readState(plan: ImportPlan): Promise<RuntimeState> {
    const found = new Map<string, string>()
    for (const image of plan.images) {
      if (this.usePodman) {
        const result = await run(['podman', 'image', 'inspect', '--format', '{{.Id}}', image.name], {env: this.target.env})
        if (result.code === 0) found.set(image.name, `sha256:${result.stdout.trim().replace(/^sha256:/, '')}`)
      } else {
        const result = await run(['skopeo', 'inspect', '--raw', `containers-storage:${image.name}`], {env: this.target.env})
        if (result.code === 0) found.set(image.name, `sha256:${createHash('sha256').update(result.stdout).digest('hex')}`)
      }
    }
    return {
      present: (image: PlanImage) => [image.platformDigest, image.configDigest].includes(found.get(image.name) as never),
      pinned: () => false,
    }
  }

  async space(plan: ImportPlan) {
    let dir = '/var/lib/containers/storage'
    if (this.usePodman) {
      const info = await run(['podman', 'info', '--format', '{{.Store.GraphRoot}}'], {env: this.target.env})
      if (info.code === 0 && info.stdout.trim()) dir = info.stdout.trim()
    }
    return {dir, bytes: plan.bytes * 2, what: `${plan.images.length} images of ${plan.platform} (containers-storage)`}
  }

  scratchBytes(plan: ImportPlan): number {
    return plan.bytes
  }

  async import({reader, plan, todo, scratch}: ImportContext): Promise<string | undefined> {
    const layout = join(scratch, LAYOUT_DIR)
    await mkdir(join(layout, 'blobs', 'sha256'), {recursive: true})
    await writeFile(join(layout, OCI_LAYOUT_FILE), await reader.readFile(OCI_LAYOUT_FILE))
    await writeFile(join(layout, INDEX_FILE), await reader.readFile(INDEX_FILE))
    for (const blob of plan.blobs) {
      await pipeline(await reader.openBlob(blob), createWriteStream(join(layout, blobPath(blob.digest))))
    }
    // Without skopeo (podman or CRI-O alike) podman pulls. podman 4.3 names an oci: pull after the layout's path, which
    // must then be a valid image name: pull by the relative path from inside scratch, name the image by its id, and
    // drop the path's name at the end.
    const viaPodman = !which('skopeo', this.target.env)
    try {
      for (const image of todo) {
        const argv = viaPodman
          ? ['sh', '-c', 'cd "$1" && shift && exec "$@"', 'sh', scratch, 'podman', 'pull', ...overrideArgs(plan.platform).map((a) => a.replace('--override-', '--')), `oci:${LAYOUT_DIR}:${image.name}`]
          : ['skopeo', 'copy', '--quiet', ...overrideArgs(plan.platform), `oci:${layout}:${image.name}`, `containers-storage:${image.name}`]
        let result = await run(argv, {env: this.target.env})
        if (result.code === 0 && viaPodman) result = await run(['podman', 'tag', image.configDigest.slice('sha256:'.length), image.name], {env: this.target.env})
        if (result.code !== 0) return `${result.stdout}${result.stderr}`
      }
      return undefined
    } finally {
      if (viaPodman) await run(['podman', 'untag', PATH_NAME, PATH_NAME], {env: this.target.env})
    }
  }

  shownDigest(image: PlanImage): string {
    return `(image id ${image.configDigest})`
  }
}
