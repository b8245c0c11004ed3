/**
 * `kubeferry diff OLD NEW` (issue 20) on the real test registry's v1.31.0 and v1.31.6 control-plane sets: the bytes
 * it says a delta carries are the bytes of the blobs in the delta `create --base` really writes, the full figure is
 * the full bundle's blobs; images are paired across the version change; bundles, bundle.json files and lockfiles (read
 * through the registry) give the same report; bad input is one clear line.
 */
import {execFileSync} from 'node:child_process'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import test from 'ava'
import type {DiffReport} from '../../src/delta/diff.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'
import {firstRunOnly, runCli} from '../helpers/cli.js'
import {makeDeltaSets, metadataOf, tempDir, V1_31_0, V1_31_6} from './helpers.js'

let dir = ''
let setup: string | undefined

test.before(async () => {
  if (missingPeer(['registries'])) return
  const peers = loadPeers()!
  dir = await tempDir('diff')
  setup = await makeDeltaSets(peers, dir)
})

const ready = (t: {fail(m: string): void}): boolean => {
  if (setup) t.fail(setup)
  return !setup
}

/** Sum of the sizes of a tar's blob entries, from `tar -tv` (SIZE is its third field). */
function blobBytes(tar: string): number {
  return execFileSync('tar', ['-tvf', tar], {encoding: 'utf8'})
    .split('\n')
    .filter((line) => / blobs\/sha256\/[0-9a-f]{64}$/.test(line))
    .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[2]), 0)
}

async function diffJson(args: string[]): Promise<DiffReport> {
  const r = await runCli(['diff', ...args, '--json'])
  if (r.code !== 0) throw new Error(`diff ${args.join(' ')}: ${r.stderr}`)
  return JSON.parse(r.stdout) as DiffReport
}

peerTest('diff of two bundles: the delta bytes are the blobs create --base writes, the full bytes the full bundle\'s', ['registries'], async (t) => {
  if (!ready(t)) return
  const report = await diffJson([join(dir, 'v0.tar'), join(dir, 'v6.tar')])
  t.is(report.carry.delta, blobBytes(join(dir, 'd6.tar')), 'what the real delta holds')
  t.is(report.carry.full, blobBytes(join(dir, 'v6.tar')), 'what the full bundle holds')
  t.is(report.carry.saved, report.carry.full - report.carry.delta)
  t.true(report.carry.saved > 0)
  const meta = await metadataOf(join(dir, 'd6.tar'))
  t.is(report.carry.saved, meta.delta!.savedBytes, 'the same saving the delta records')
  // pause:3.10 and etcd are the very same images in both sets; the others changed tag
  const byName = new Map(report.images.map((i) => [i.name, i]))
  t.is(byName.get('registry.k8s.io/pause:3.10')?.change, 'unchanged')
  const apiserver = byName.get('registry.k8s.io/kube-apiserver:v1.31.6')
  t.is(apiserver?.change, 'changed')
  t.is(apiserver?.old?.name, 'registry.k8s.io/kube-apiserver:v1.31.0')
  t.true(apiserver!.newBytes > 0)
  t.deepEqual(report.images.filter((i) => i.new).map((i) => i.new!.name).sort(), [...V1_31_6].sort(), 'every NEW image once')
  t.deepEqual(report.images.filter((i) => i.old).map((i) => i.old!.name).sort(), [...V1_31_0].sort(), 'every OLD image once')
  t.log(`figures: full ${report.carry.full} B, delta ${report.carry.delta} B (${((100 * report.carry.delta) / report.carry.full).toFixed(1)} %)`)
})

peerTest('bundle.json files and lockfiles (manifests read through --mirror) give the same report as the bundles', ['registries'], async (t) => {
  if (!ready(t)) return
  const peers = loadPeers() as Peers
  const sides: Record<string, {json: string; lock: string}> = {}
  for (const name of ['v0', 'v6']) {
    const json = join(dir, `${name}.bundle.json`)
    await writeFile(json, execFileSync('tar', ['-xOf', join(dir, `${name}.tar`), 'kubeferry/bundle.json']))
    const meta = await metadataOf(join(dir, `${name}.tar`))
    const lock = join(dir, `${name}.lock`)
    await writeFile(lock, JSON.stringify({version: 1, images: meta.images.map((i) => ({reference: i.name, digest: i.digest, mediaType: i.mediaType, platforms: i.platforms.map((p) => p.platform)}))}))
    sides[name] = {json, lock}
  }
  const strip = (r: DiffReport) => ({images: r.images, blobs: r.blobs, carry: r.carry})
  const fromTars = strip(await diffJson([join(dir, 'v0.tar'), join(dir, 'v6.tar')]))
  t.deepEqual(strip(await diffJson([sides.v0.json, sides.v6.json])), fromTars, 'bundle.json files')
  const mirror = ['--mirror', `registry.k8s.io=${peers.registries.open.url}`, '--platform', 'linux/amd64', '--platform', 'linux/arm64']
  t.deepEqual(strip(await diffJson([sides.v0.lock, sides.v6.lock, ...mirror])), fromTars, 'lockfiles')
  t.deepEqual(strip(await diffJson([join(dir, 'v0.tar'), sides.v6.lock, '--mirror', `registry.k8s.io=${peers.registries.open.url}`])), fromTars, 'a bundle and a lockfile (its platforms from the bundle)')
})

if (firstRunOnly('the wording of the text report, and bad input')) peerTest('the text report names what changed and what the upgrade carries; bad input is one line and a non-zero exit', ['registries'], async (t) => {
  if (!ready(t)) return
  const r = await runCli(['diff', join(dir, 'v0.tar'), join(dir, 'v6.tar')])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /^v0\.tar \(bundle, \d+ images\) → v6\.tar \(bundle, \d+ images\)$/m)
  t.regex(r.stdout, /^ {2}changed\s+registry\.k8s\.io\/kube-apiserver:v1\.31\.6\s+was registry\.k8s\.io\/kube-apiserver:v1\.31\.0\s+\S+/m)
  t.regex(r.stdout, /^carry: \S+ \S+ as a delta \(create --base v0\.tar\) against \S+ \S+ as a full bundle: \S+ \S+ \(\d+ %\) saved$/m)
  t.notRegex(r.stdout, /pause:3\.10/, 'unchanged images are counted, not listed')
  for (const [args, pattern] of [
    [[join(dir, 'v0.tar'), join(dir, 'absent.tar')], /^error: \S+absent\.tar: no such file$/m],
    [[join(dir, 'v0.tar'), '/etc/hostname'], /^error: \/etc\/hostname is neither a tar nor JSON/m],
    [[join(dir, 'v0.tar')], /missing|required/i],
  ] as const) {
    const bad = await runCli(['diff', ...args])
    t.not(bad.code, 0, args.join(' '))
    t.regex(bad.stderr, pattern)
    t.notRegex(bad.stderr, /\n\s+at /, 'no stack trace')
  }
})
