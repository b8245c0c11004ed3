/**
 * The publishers' artifact lookups (cosign tags, referrers: artifacts.ts) started early: as soon as the planner knows an
 * image's digest and its carried platforms' digests (plan.ts `onImage`), the very questions carryArtifacts will ask
 * about them are sent (a few at once, see PREFETCH_MAX) while planning goes on. carryArtifacts then
 * reads through this source and finds its answers waiting (or in flight): the same requests, no more, taken off
 * create's critical path. A question asked without a prefetch goes straight to the source.
 */
import type {Readable} from 'node:stream'
import {digestTag} from '../oci/artifact-tags.js'
import type {Digest} from '../oci/digest.js'
import type {Reference} from '../oci/reference.js'
import type {BlobReadOptions, ImageSource} from '../oci/source.js'
import type {Descriptor, RawManifest} from '../oci/types.js'
import {COSIGN_SUFFIXES} from './artifacts.js'

/** A small FIFO limiter: `run(fn)` starts fn once fewer than `limit` started ones are still running. */
class Limiter {
  private running = 0
  private readonly waiting: Array<() => void> = []
  constructor(private readonly limit: number) {}

  run<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const go = (): void => {
        this.running++
        fn()
          .then(resolve, reject)
          .finally(() => {
            this.running--
            this.waiting.shift()?.()
          })
      }
      if (this.running < this.limit) go()
      else this.waiting.push(go)
    })
  }
}

/**
 * Lookups in flight for each registry transfer allowed (--concurrency), and at most: they are HEADs and 404s with no
 * body, latency-bound, and there are five per image and platform; at 8 at a time they took ~13 round trips.
 */
const PREFETCH_PER_TRANSFER = 4
const PREFETCH_MAX = 32

export class ArtifactPrefetch implements ImageSource {
  private readonly answers = new Map<string, Promise<unknown>>()
  private readonly limiter: Limiter

  constructor(
    private readonly source: ImageSource,
    concurrency: number,
  ) {
    this.limiter = new Limiter(Math.max(1, Math.min(PREFETCH_PER_TRANSFER * concurrency, PREFETCH_MAX)))
  }

  get label(): string {
    return this.source.label
  }

  /** Whether the source can be asked about artifacts at all (carryArtifacts carries none otherwise). */
  get enabled(): boolean {
    return this.source.findTagged !== undefined && this.source.referrers !== undefined
  }

  /** Send now what carryArtifacts will ask about these subjects of `ref`'s repository (artifacts.ts `lookups`). */
  prefetch(ref: Reference, subjects: Digest[]): void {
    if (!this.enabled) return
    const repo: Reference = {registry: ref.registry, repository: ref.repository}
    for (const subject of new Set(subjects)) {
      for (const {suffix} of COSIGN_SUFFIXES) this.ask(`tag ${keyOf(repo)} ${digestTag(subject, suffix)}`, () => this.source.findTagged!(repo, digestTag(subject, suffix)), true)
      this.ask(`referrers ${keyOf(repo)} ${subject}`, () => this.source.referrers!(repo, subject), true)
    }
  }

  manifest(ref: Reference, digest?: Digest): Promise<RawManifest | undefined> {
    return this.source.manifest(ref, digest)
  }

  blob(ref: Reference, desc: Pick<Descriptor, 'digest' | 'size'>, options?: BlobReadOptions): Promise<Readable> {
    return this.source.blob(ref, desc, options)
  }

  findTagged(ref: Reference, tag: string): Promise<RawManifest | undefined> {
    return this.ask(`tag ${keyOf(ref)} ${tag}`, () => this.source.findTagged!(ref, tag), false)
  }

  referrers(ref: Reference, digest: Digest): Promise<Descriptor[]> {
    return this.ask(`referrers ${keyOf(ref)} ${digest}`, () => this.source.referrers!(ref, digest), false)
  }

  /**
   * The answer to one question: the prefetched one when there is one, taken once (a later identical question is sent
   * again, as without a prefetch); else asked now. A prefetch that fails is reported to whoever takes it.
   */
  private ask<T>(key: string, fn: () => Promise<T>, early: boolean): Promise<T> {
    if (early) {
      if (this.answers.has(key)) return this.answers.get(key) as Promise<T>
      const answer = this.limiter.run(fn)
      answer.catch(() => undefined) // nobody may take it (a build that stopped first)
      this.answers.set(key, answer)
      return answer
    }
    const prefetched = this.answers.get(key) as Promise<T> | undefined
    if (prefetched) {
      this.answers.delete(key)
      return prefetched
    }
    return fn()
  }
}

function keyOf(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`
}
