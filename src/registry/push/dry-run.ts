/** `--dry-run`: what each name would become, and which blobs the registry lacks (HEAD only, nothing written). */
import type {Digest} from '../../oci/digest.js'
import type {Target} from './check.js'
import type {Limiter} from '../../util/limiter.js'
import {leafBlobs} from './progress.js'
import type {Results} from './report.js'
import type {PlatformPolicy, PushCounts, PushRegistry} from './types.js'

export async function dryRun(registry: PushRegistry, registryHost: string, policy: PlatformPolicy, list: Target[], requests: Limiter, results: Results, counts: PushCounts): Promise<void> {
  const blobsToUpload = new Map<Digest, number>()
  await Promise.all(
    list.map(async (t) => {
      const filtered = policy === 'filtered' && t.image.root.filtered !== undefined
      results.record(t, t.status === 'conflict' ? 'conflict' : t.status ?? 'would-push', filtered ? t.image.root.filtered!.digest : t.image.root.raw.digest, filtered)
      if (t.status === 'conflict') return
      await Promise.all(
        leafBlobs(t.image.root).map((b) =>
          requests.run(async () => {
            if (blobsToUpload.has(b.digest)) return
            if (!(await registry.blobExists({registry: registryHost, repository: t.repository}, b.digest))) blobsToUpload.set(b.digest, b.size)
          }),
        ),
      )
    }),
  )
  counts.blobs.toUpload = blobsToUpload.size
  counts.blobs.bytesToUpload = [...blobsToUpload.values()].reduce((a, b) => a + b, 0)
}
