/** Shared setup for push/config tests: an image set, fixture bundles, a private registry we can kill, the CLI. */
import {execFile} from 'node:child_process'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {buildImageSet, type ImageSet} from '../images/builder.js'
import {startRegistry, type StartedRegistry} from '../harness/peers/registry.js'
import {stopDaemon} from '../harness/proc.js'
import {makeBundle} from '../serve/make-bundle.js'
import {runCli} from '../helpers/cli.js'

export const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)))

export async function tempDir(name: string): Promise<string> {
  return await mkdtemp(join(tmpdir(), `kubeferry-${name}-`))
}

let setPromise: Promise<ImageSet> | undefined
/** One image set per test process (the default kubeadm v1.31.6 set, 2 platforms, small layers). */
export function imageSet(): Promise<ImageSet> {
  setPromise ??= (async () => buildImageSet({dir: join(await tempDir('images'), 'set')}))()
  return setPromise
}

/** A bundle of the image set (both platforms), made by the real planner and writer. */
export async function fixtureBundle(): Promise<{path: string; set: ImageSet}> {
  const set = await imageSet()
  const path = join(await tempDir('bundle'), 'bundle.tar')
  await makeBundle({output: path, layout: {dir: set.dir, images: set.images}})
  return {path, set}
}

/** A private open docker-registry on a free loopback port, stoppable by its PID only. */
export async function ownRegistry(name = 'push-test'): Promise<StartedRegistry & {stop: () => Promise<void>; dir: string}> {
  const dir = await tempDir(name)
  const reg = await startRegistry(name, dir, {kind: 'none'})
  return {...reg, stop: () => stopDaemon(reg.process, 2000)}
}

/** Restart a stopped private registry on the same port and storage. */
export async function restartRegistry(reg: StartedRegistry): Promise<StartedRegistry & {stop: () => Promise<void>}> {
  const {startDaemon, waitFor, deathNote} = await import('../harness/proc.js')
  const {REGISTRY_BIN} = await import('../harness/peers/registry.js')
  const proc = startDaemon('push-test-restarted', REGISTRY_BIN, ['serve', join(reg.dir, 'config.yml')], {logFile: join(reg.dir, 'registry.log')})
  const {request} = await import('undici')
  await waitFor(
    'restarted registry',
    async () => {
      const res = await request(`${reg.url}/v2/`)
      await res.body.dump()
      return res.statusCode === 200
    },
    15_000,
    () => deathNote(proc),
  )
  return {...reg, process: proc, stop: () => stopDaemon(proc, 2000)}
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs another tool (skopeo, curl); never rejects on a non-zero exit (the result says it). */
export function run(cmd: string, args: string[], options: {input?: string; timeoutMs?: number} = {}): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = execFile(cmd, args, {timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 << 20}, (error, stdout, stderr) => {
      const code = error ? (typeof (error as {code?: unknown}).code === 'number' ? ((error as {code: number}).code) : 1) : 0
      resolvePromise({code, stdout, stderr})
    })
    child.stdin?.on('error', () => undefined) // the child may exit before reading its input
    child.stdin?.end(options.input ?? '')
  })
}

/** A real bundle from `kubeferry create` of kubeadm v1.31.6's images + busybox, fetched from the open peer registry. */
export async function createBundle(openHost: string, platforms: string[] = ['linux/amd64', 'linux/arm64']): Promise<string> {
  const dir = await tempDir('create')
  const out = join(dir, 'k8s.tar')
  const args = ['create', '--kubernetes-version', 'v1.31.6', '--image', 'docker.io/library/busybox:1.36', '--mirror', `registry.k8s.io=http://${openHost}`, '--mirror', `docker.io=http://${openHost}`, '--cache-dir', join(dir, 'cache'), '--no-progress', '-o', out]
  for (const p of platforms) args.push('--platform', p)
  const r = await runCli(args)
  if (r.code !== 0) throw new Error(`kubeferry create failed (${r.code}): ${r.stderr}`)
  return out
}

/** Names and digests of a bundle's images (from its index.json, as loaders see them). */
export async function bundleIndex(path: string): Promise<Array<{name: string; digest: string; mediaType: string}>> {
  const {BundleReader} = await import('../../src/bundle/reader.js')
  const reader = await BundleReader.open(path)
  const index = await reader.readJson<{manifests: Array<{digest: string; mediaType: string; annotations?: Record<string, string>}>}>('index.json')
  return index.manifests.map((m) => ({name: m.annotations?.['io.containerd.image.name'] ?? '', digest: m.digest, mediaType: m.mediaType}))
}

export function randomName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`
}
