/** The last step, report: each name's result as it is known, and the push's report at the end. */
import type {Digest} from '../../oci/digest.js'
import {describeError, KubeferryError} from '../../oci/errors.js'
import {presentPlatforms, type SourceImage} from '../push-source.js'
import {formatDestination, type PushDestination} from '../rename.js'
import type {Target} from './check.js'
import type {PlatformPolicy, PushReport, TargetResult, TargetStatus} from './types.js'

/** Each target's result, recorded once it is known (present, pushed, would-push, conflict…). */
export class Results {
  private readonly byTarget = new Map<Target, TargetResult>()

  record(t: Target, status: TargetStatus, digest: Digest, filtered: boolean): TargetResult {
    const r: TargetResult = {
      reference: t.reference,
      repository: t.repository,
      ...(t.image.ref.tag ? {tag: t.image.ref.tag} : {}),
      status,
      digest,
      upstreamDigest: t.image.root.raw.digest,
      filtered,
      alias: t.alias,
      ...(t.existing && !t.acceptable.has(t.existing) ? {previousDigest: t.existing} : {}),
    }
    this.byTarget.set(t, r)
    return r
  }

  /** The recorded results of `targets`, in their order. */
  of(targets: Target[]): TargetResult[] {
    return targets.map((t) => this.byTarget.get(t)).filter((r): r is TargetResult => r !== undefined)
  }
}

export function emptyReport(dest: PushDestination, policy: PlatformPolicy, dryRun: boolean): PushReport {
  return {
    destination: formatDestination(dest),
    dryRun,
    platformPolicy: policy,
    images: [],
    blobs: {uploaded: 0, mounted: 0, present: 0, bytesUploaded: 0},
    manifests: {pushed: 0, present: 0},
    durationMs: 0,
  }
}

/** Fill in the images (every image of the bundle, with the results of its names) and the duration. */
export function finishReport(report: PushReport, images: SourceImage[], targets: Target[], results: Results, started: number): PushReport {
  report.images = images.map((image) => ({
    source: image.name,
    platforms: presentPlatforms(image.root),
    sparse: image.sparse,
    targets: results.of(targets.filter((t) => t.image === image)),
  }))
  report.durationMs = Date.now() - started
  return report
}

/** A failed push as one line: how far it got, why it stopped, and that a rerun continues. */
export function incompleteError(dest: PushDestination, completed: number, total: number, failure: unknown): KubeferryError {
  const e = failure instanceof KubeferryError ? failure : new KubeferryError('INTERNAL', describeError(failure))
  return new KubeferryError(e.code, `push to ${formatDestination(dest)} is incomplete (${completed} of ${total} name(s) pushed): ${e.message}`, {
    hint: `${e.hint ? `${e.hint}; then ` : ''}rerun the same command: what is already in the registry is skipped`,
    cause: failure,
    exitCode: e.exitCode,
  })
}
