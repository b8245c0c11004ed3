/** What every runtime importer offers the load orchestration (src/runtime/load.ts). */
import type {ImportPlan, PlanImage} from '../bundle/import-plan.js'
import type {BundleReader} from '../bundle/reader.js'

export interface RuntimeState {
  /** The name points at the expected content (containerd: upstream digest; docker/podman: image id). */
  present(image: PlanImage): boolean
  pinned(name: string): boolean
}

export interface ImportContext {
  reader: BundleReader
  plan: ImportPlan
  todo: PlanImage[]
  /** Private scratch directory under TMPDIR, removed by the caller. */
  scratch: string
}

export interface RuntimeAdapter {
  readState(plan: ImportPlan): Promise<RuntimeState>
  /** Where the images land and how many bytes they need there at least. */
  space(plan: ImportPlan, bundleSize: number): Promise<{dir: string; bytes: number; what: string} | undefined>
  /** Scratch bytes the import needs under TMPDIR. */
  scratchBytes(plan: ImportPlan): number
  /** Runs the import; resolves to the tool's error output when it failed (the caller then checks what is there). */
  import(context: ImportContext): Promise<string | undefined>
  /** Labels a sandbox image so kubelet GC keeps it (containerd family only). */
  pin?(name: string): Promise<void>
  /** Also names the image by digest (`repo@sha256:…`, as a CRI pull records it); resolves to a warning on failure. */
  addDigestName?(image: PlanImage): Promise<string | undefined>
  /** How the imported line shows the digest for this runtime. */
  shownDigest(image: PlanImage): string
}
