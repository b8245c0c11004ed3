/**
 * Shared setup of the delta tests (issue 20): the v1.31.0 control-plane images built by the test image builder and
 * pushed into the open test registry (same base layers as the v1.31.6 set; pause:3.10 and etcd:3.5.15-0 the very
 * same images; the others differ in their own "binary" layer), then full bundles of both sets and deltas made by the
 * real CLI.
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {buildImageSet} from '../images/builder.js'
import {KUBEADM_V1_31_6, kubeadmV1310Specs} from '../images/catalog.js'
import {pushImageSet} from '../images/seed.js'
import type {Peers} from '../harness/peers.js'
import {runCli, type CliResult} from '../helpers/cli.js'
import type {BundleMetadata} from '../../src/bundle/layout.js'

export const PLATFORMS = ['linux/amd64', 'linux/arm64']
export const EPOCH = '1700000000'
export const V1_31_0 = kubeadmV1310Specs().map((s) => s.name)
export const V1_31_6 = KUBEADM_V1_31_6

/**
 * Build the v1.31.0 set and push it into the open test registry (idempotent: present blobs are skipped). Test files
 * run at once and distribution races when one blob is committed twice at once (see seed.ts), so one push at a time:
 * a lock directory per registry (taken over when older than two minutes: its holder died).
 */
export async function seedV1310(peers: Peers, dir: string): Promise<void> {
  const set = await buildImageSet({dir: join(dir, 'images-v1.31.0'), images: kubeadmV1310Specs()})
  const url = peers.registries.open.url
  const lock = join(tmpdir(), `kf-delta-seed-${createHash('sha256').update(url).digest('hex').slice(0, 12)}.lock`)
  for (;;) {
    try {
      await mkdir(lock)
      break
    } catch {
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0)
      if (age > 120_000) await rm(lock, {recursive: true, force: true})
      else await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  try {
    await pushImageSet(set, {url})
  } finally {
    await rm(lock, {recursive: true, force: true})
  }
}

/** `kubeferry create` of `images` from the open test registry (two platforms, fixed SOURCE_DATE_EPOCH). */
export async function create(peers: Peers, dir: string, output: string, images: string[], extra: string[] = []): Promise<CliResult> {
  const url = peers.registries.open.url
  const args = ['create', ...images.flatMap((i) => ['--image', i]), '--mirror', `registry.k8s.io=${url}`, ...PLATFORMS.flatMap((p) => ['--platform', p])]
  return runCli([...args, '--cache-dir', join(dir, 'cache'), '--no-progress', '-o', output, ...extra], {env: {SOURCE_DATE_EPOCH: EPOCH}})
}

/**
 * Bundle the v1.31.0 set (v0.tar), the v1.31.6 set (v6.tar) and the delta between them (d6.tar, `create --base
 * v0.tar`) into `dir`, after seeding v1.31.0; the first failure as a message, else undefined.
 */
export async function makeDeltaSets(peers: Peers, dir: string): Promise<string | undefined> {
  await seedV1310(peers, dir)
  for (const [name, images, extra] of [
    ['v0.tar', V1_31_0, []],
    ['v6.tar', V1_31_6, []],
    ['d6.tar', V1_31_6, ['--base', join(dir, 'v0.tar')]],
  ] as const) {
    const r = await create(peers, dir, join(dir, name), [...images], [...extra])
    if (r.code !== 0) return `create ${name}: ${r.stderr}`
  }
  return undefined
}

export async function tempDir(name: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `kf-delta-${name}-`))
}

/** The blob entries of a tar (`blobs/sha256/<hex>`), sorted. */
export function blobEntries(tar: string): string[] {
  return execFileSync('tar', ['-tf', tar], {encoding: 'utf8'}).split('\n').filter((n) => n.startsWith('blobs/sha256/')).sort()
}

export async function metadataOf(tar: string): Promise<BundleMetadata> {
  return JSON.parse(execFileSync('tar', ['-xOf', tar, 'kubeferry/bundle.json'], {encoding: 'utf8', maxBuffer: 64 << 20})) as BundleMetadata
}

export async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8')
}

/** A unique lowercase name for what a test writes into the shared peers. */
export function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.floor(Math.random() * 1e6)}`
}
