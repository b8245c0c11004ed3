/**
 * `push`: a bundle's images into a registry under new names, digests unchanged. The steps, each in src/registry/push/:
 *  1. plan (plan.ts): the images index.json names, and each one's destination names (renaming rules, aliases);
 *  2. check (check.ts): HEAD every destination name while the manifests are read and the gate runs; a name already
 *     pointing at the bundle's digest is skipped with everything under it (the registry validated it when the tag
 *     was written), so a rerun on a complete registry costs one HEAD per name; a name pointing at another digest is
 *     refused before anything is written, unless `overwrite`;
 *  3. blobs (blobs.ts): HEAD, else a cross-repository mount from where this run already put them, else a streamed
 *     upload verified as it reads the bundle;
 *  4. child manifests (manifests.ts): platform manifests by digest, as soon as their blobs are in place;
 *  5. index and tag (manifests.ts): the root under its tag, with the platform policy for sparse indexes;
 *  6. report (report.ts).
 * Steps 3-5 are the registry sink (sink.ts) taking each image from the bundle as a source, all images at once,
 * sharing blob placements and two pools (pools.ts): uploads, and short exchanges.
 */
import type {BundleReader} from '../bundle/reader.js'
import {BundleSource} from '../bundle/source.js'
import {reliedOn} from '../bundle/contract.js'
import {METADATA_FILE} from '../bundle/layout.js'
import {assertDeltaForPush, placeReliedBlobs} from './push/relied.js'
import {checkRegistry, classifyTargets, refuseConflicts} from './push/check.js'
import {dryRun} from './push/dry-run.js'
import {pushArtifacts} from './push/artifacts.js'
import {Limiter} from '../util/limiter.js'
import {listImages, planPlaces} from './push/plan.js'
import {WritePools} from './push/pools.js'
import {plannedImages} from './push/progress.js'
import {emptyReport, finishReport, Results} from './push/report.js'
import type {PushOptions, PushRegistry, PushReport} from './push/types.js'
import {RegistrySink} from './sink.js'

export {Limiter} from '../util/limiter.js'
export {PLATFORM_POLICIES} from './push/types.js'
export type {ImageResult, PlannedImage, PlatformPolicy, PushEvent, PushOptions, PushRegistry, PushReport, TargetResult, TargetStatus} from './push/types.js'

/** Push every image of the bundle to the destination; see the file comment for the steps and the push/ files for each. */
export async function pushBundle(reader: BundleReader, registry: PushRegistry, options: PushOptions): Promise<PushReport> {
  const started = Date.now()
  const policy = options.platformPolicy ?? 'auto'
  const concurrency = Math.max(1, options.concurrency ?? 8)
  const pools = new WritePools(new Limiter(concurrency), new Limiter(concurrency))
  const emit = options.onEvent ?? (() => {})
  const dest = options.destination
  const gate = options.gate ?? Promise.resolve()
  gate.catch(() => {}) // awaited in steps 1-2; must not count as unhandled while other work is awaited

  // 1. plan
  const named = await listImages(reader, gate)
  const places = planPlaces(named, options.rules, dest)
  const meta = reader.has(METADATA_FILE) ? await reader.metadata() : undefined
  assertDeltaForPush(meta)
  // 2. check (a delta's relied-on layers count as held: the registry must have them, see push/relied.ts)
  const source = new BundleSource(reader, meta ? reliedOn(meta) : undefined)
  const checked = await checkRegistry(source, registry, named, places, gate, pools.requests)
  const targets = classifyTargets(places, checked, policy, options)
  const conflicts = targets.filter((t) => t.status === 'conflict')
  const toPush = targets.filter((t) => t.status !== 'present' && t.status !== 'conflict')
  emit({type: 'planned', images: checked.images.length, targets: targets.length, toPush: toPush.length, ...plannedImages(toPush)})
  if (!options.dryRun) refuseConflicts(conflicts)

  const report = emptyReport(dest, policy, options.dryRun ?? false)
  const results = new Results()
  for (const t of targets) if (t.status === 'present') results.record(t, 'present', t.existing!, t.existing !== t.image.root.raw.digest)
  if (options.dryRun) {
    await placeReliedBlobs(meta, toPush, registry, pools.requests, true) // a delta: refused as the push would be
    await dryRun(registry, dest.registry, policy, toPush.concat(conflicts), pools.requests, results, report)
  } else {
    await placeReliedBlobs(meta, toPush, registry, pools.requests) // a delta: every relied-on layer in place, or nothing written
    // 3-5. blobs, child manifests, index and tag: the registry sink takes each image from the bundle
    const sink = new RegistrySink({registry, destination: dest, policy, pools, counts: report, results, onEvent: emit})
    sink.announce(toPush.map((t) => t.image))
    await Promise.all(
      checked.images.map((image) => {
        const targets = toPush.filter((t) => t.image === image)
        return targets.length === 0 ? undefined : sink.write(image, source, {targets}).catch(() => undefined) // the first failure is reported below
      }),
    )
    const failure = sink.failed(toPush.length)
    if (failure) throw failure
  }
  // 6. report; then the publishers' artifacts of what is in the registry now (push/artifacts.ts)
  finishReport(report, checked.images, targets, results, started)
  const artifacts = await pushArtifacts({registry, registryHost: dest.registry, addReferrer: options.addReferrer, overwrite: options.overwrite ?? false, concurrency, dryRun: options.dryRun}, await reader.metadata(), source, report)
  if (artifacts) report.artifacts = artifacts
  report.durationMs = Date.now() - started
  return report
}
