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
import {Limiter} from '../util/limiter.js'
import {COSIGN_SUFFIXES} from './artifacts.js'

/**
 * Lookups in flight for each registry transfer allowed (--concurrency), and at most: they are HEADs and 404s with no
 * body, latency-bound, and there are five per image and platform; at 8 at a time they took ~13 round trips.
 */
const PREFETCH_PER_TRANSFER = 4
const PREFETCH_MAX = 32

export class ArtifactPrefetch implements ImageSource {
  private readonly answers = new Map<string, Early>()
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

  /** Lookups about `ref`'s repository will follow (before its manifest is read: see ImageSource.expectArtifactLookups). */
  expect(ref: Reference): void {
    if (this.enabled) this.source.expectArtifactLookups?.({registry: ref.registry, repository: ref.repository})
  }

  /** Send now what carryArtifacts will ask about these subjects of `ref`'s repository (artifacts.ts `lookups`). */
  prefetch(ref: Reference, subjects: Digest[]): void {
    if (!this.enabled) return
    const repo: Reference = {registry: ref.registry, repository: ref.repository}
    for (const subject of new Set(subjects)) {
      for (const {suffix} of COSIGN_SUFFIXES) this.ask(`tag ${keyOf(repo)} ${digestTag(subject, suffix)}`, () => this.source.findTagged!(repo, digestTag(subject, suffix)), true)
      this.ask(`referrers ${keyOf(repo)} ${subject}`, (warn) => this.source.referrers!(repo, subject, warn), true)
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

  referrers(ref: Reference, digest: Digest, warn?: (message: string) => void): Promise<Descriptor[]> {
    return this.ask(`referrers ${keyOf(ref)} ${digest}`, (w) => this.source.referrers!(ref, digest, w), false, warn)
  }

  /**
   * The answer to one question: the prefetched one when there is one, taken once (a later identical question is sent
   * again, as without a prefetch); else asked now. A prefetch that fails is reported to whoever takes it, and so are
   * the warnings it gave (a referrers list cut at its bound): those given before it was taken, then as they come.
   */
  private ask<T>(key: string, fn: (warn: (message: string) => void) => Promise<T>, early: boolean, warn?: (message: string) => void): Promise<T> {
    if (early) {
      const known = this.answers.get(key)
      if (known) return known.answer as Promise<T>
      const entry: Early = {answer: Promise.resolve(), warnings: []}
      entry.answer = this.limiter.run(async () => fn((message) => (entry.taker ? entry.taker(message) : void entry.warnings.push(message))))
      entry.answer.catch(() => undefined) // nobody may take it (a build that stopped first)
      this.answers.set(key, entry)
      return entry.answer as Promise<T>
    }
    const prefetched = this.answers.get(key)
    if (!prefetched) return fn(warn ?? (() => undefined))
    this.answers.delete(key)
    if (warn) {
      prefetched.taker = warn
      for (const message of prefetched.warnings.splice(0)) warn(message)
    }
    return prefetched.answer as Promise<T>
  }
}

/** A question sent early: its answer, and the warnings it gave until someone took it (then `taker` gets them). */
interface Early {
  answer: Promise<unknown>
  warnings: string[]
  taker?: (message: string) => void
}

function keyOf(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`
}
