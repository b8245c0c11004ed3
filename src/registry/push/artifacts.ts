/**
 * After the images, the publishers' artifacts the bundle carries (bundle.json, issue 19) go into every repository an
 * image was pushed to or found in, digests unchanged: config and layers (HEAD, else a verified upload from the
 * bundle), then the manifest — under cosign's tag (`sha256-<hex>.sig|.att|.sbom`), or by digest for an OCI 1.1
 * referrer, which is then listed for its subject (the registry's referrers API, else the referrers tag schema:
 * referrers.ts). So `cosign verify` and admission controllers inside find them where they look upstream.
 *
 * Left out, and said so in the report: an artifact about an index the registry holds under another digest (push
 * filtered a sparse index: the signature is about a digest the registry does not have), and a cosign tag that already
 * holds another manifest (signatures added inside would be lost) unless `overwrite`.
 */
import type {Readable} from 'node:stream'
import {describeError, KubeferryError} from '../../oci/errors.js'
import type {Reference} from '../../oci/reference.js'
import type {ImageSource} from '../../oci/source.js'
import type {BundleArtifact, BundleArtifactManifest, BundleMetadata} from '../../bundle/layout.js'
import {mapLimit} from '../../util/async.js'
import type {AddReferrer, ArtifactPushReport, PushRegistry, PushReport} from './types.js'

export interface ArtifactPushContext {
  registry: PushRegistry
  /** The destination registry host. */
  registryHost: string
  /** Lists a referrer for its subject (referrers.ts addReferrer); without it referrers are pushed by digest only. */
  addReferrer?: AddReferrer
  overwrite: boolean
  concurrency: number
  /** push --dry-run: ask the registry (HEAD), write nothing; `pushed` counts what would be pushed. */
  dryRun?: boolean
}


/**
 * Each blob or child manifest goes up once per repository, whatever artifacts share it (the empty config of every OCI
 * 1.1 referrer, an SBOM both tagged and referred): distribution's filesystem driver races when the same blob is
 * committed twice at once, and a manifest PUT beside it then fails (seen as DIGEST_INVALID or MANIFEST_BLOB_UNKNOWN).
 */
type Once = Map<string, Promise<void>>
function once(placed: Once, key: string, put: () => Promise<void>): Promise<void> {
  let done = placed.get(key)
  if (!done) {
    done = put()
    placed.set(key, done)
  }
  return done
}

interface Job {
  image: string
  repo: Reference
  from: Reference
  artifact: BundleArtifact
  /** The digests of the image the destination repository holds: artifacts about others are left out. */
  held: Set<string>
}

/** Push the artifacts of every image of `report` that has names in the registry; undefined when the bundle carries none. */
export async function pushArtifacts(ctx: ArtifactPushContext, meta: BundleMetadata, source: ImageSource, report: PushReport): Promise<ArtifactPushReport | undefined> {
  const jobs: Job[] = []
  for (const image of report.images) {
    const bundled = meta.images.find((i) => i.name === image.source)
    if (!bundled?.artifacts?.length) continue
    const from: Reference = {registry: bundled.registry, repository: bundled.repository}
    const done = image.targets.filter((t) => t.status === 'pushed' || t.status === 'overwritten' || t.status === 'present' || t.status === 'would-push' || t.status === 'would-overwrite')
    for (const repository of new Set(done.map((t) => t.repository))) {
      const roots = done.filter((t) => t.repository === repository).map((t) => t.digest)
      const held = new Set<string>([...roots, ...bundled.platforms.map((p) => p.digest)])
      for (const artifact of bundled.artifacts) jobs.push({image: image.source, repo: {registry: ctx.registryHost, repository}, from, artifact, held})
    }
  }
  if (jobs.length === 0) return undefined
  const out: ArtifactPushReport = {pushed: 0, present: 0, skipped: []}
  const placed: Once = new Map()
  await mapLimit(jobs, ctx.concurrency, async (job) => {
    try {
      await pushOne(ctx, source, job, out, placed)
    } catch (error) {
      const e = error instanceof KubeferryError ? error : new KubeferryError('INTERNAL', describeError(error))
      throw new KubeferryError(e.code, `${job.image}: pushing its ${job.artifact.kind} ${job.artifact.tag ?? job.artifact.digest} to ${job.repo.registry}/${job.repo.repository}: ${e.message}`, {hint: `${e.hint ? `${e.hint}; ` : ''}the images are pushed; rerun the same command to push the artifacts`, cause: error, exitCode: e.exitCode})
    }
  })
  return out
}

async function pushOne(ctx: ArtifactPushContext, source: ImageSource, job: Job, out: ArtifactPushReport, placed: Once): Promise<void> {
  const {repo, artifact: a} = job
  const where = `${repo.registry}/${repo.repository}${a.tag ? `:${a.tag}` : `@${a.digest}`}`
  if (!job.held.has(a.subject)) {
    out.skipped.push({reference: where, reason: `about ${a.subject}, which the registry holds under another digest: it refused the bundle's index, which lists platforms the bundle leaves out, and took the index of the carried platforms instead; to keep signatures of the whole index, build the bundle with --platform all, or push to a registry that accepts such an index`})
    return
  }
  const named: Reference = a.tag ? {...repo, tag: a.tag} : {...repo, digest: a.digest}
  const existing = await ctx.registry.headManifest(named)
  if (existing && existing.digest !== a.digest && !ctx.overwrite) {
    out.skipped.push({reference: where, reason: `the tag holds another manifest (${existing.digest}); --overwrite replaces it`})
    return
  }
  if (ctx.dryRun) {
    if (existing?.digest === a.digest) out.present++
    else out.pushed++
    return
  }
  if (existing?.digest !== a.digest) {
    // An index-type artifact: the manifests under it first, each after its blobs, deepest first (bundle.json lists
    // parents before children), by digest; then the root under its tag or digest. Bytes as carried: digests unchanged.
    for (const part of [...(a.manifests ?? [])].reverse()) {
      await once(placed, `${repo.repository}@${part.digest}`, async () => {
        if (!(await ctx.registry.headManifest({...repo, digest: part.digest}))) await putCarried(ctx, source, job, part, part.digest, placed)
      })
    }
    await putCarried(ctx, source, job, a, a.tag ?? a.digest, placed)
  }
  const listed = a.kind === 'referrer' && ctx.addReferrer ? await ctx.addReferrer(repo, a.subject, {mediaType: a.mediaType, digest: a.digest, size: a.size, ...(a.artifactType ? {artifactType: a.artifactType} : {})}) : 'present'
  if (existing?.digest === a.digest && listed !== 'tag') out.present++
  else out.pushed++
}

/** One carried manifest into `job.repo` under `where` (a tag or its digest), after its config and layers. */
async function putCarried(ctx: ArtifactPushContext, source: ImageSource, job: Job, m: BundleArtifactManifest, where: string, placed: Once): Promise<void> {
  const {repo} = job
  for (const blob of m.config ? [m.config, ...(m.layers ?? [])] : []) {
    await once(placed, `${repo.repository}@${blob.digest}`, async () => {
      if (!(await ctx.registry.blobExists(repo, blob.digest))) await ctx.registry.uploadBlob(repo, blob, async () => (await source.blob(job.from, blob)) as Readable)
    })
  }
  const raw = await source.manifest(job.from, m.digest)
  if (!raw) throw new KubeferryError('BUNDLE_INVALID', `the bundle lacks its manifest ${m.digest}`, {hint: 'run `kubeferry verify` on the bundle'})
  await ctx.registry.putManifest(repo, where, {bytes: raw.bytes, digest: m.digest, mediaType: m.mediaType})
}
