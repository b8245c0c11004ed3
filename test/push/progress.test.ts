/**
 * Push's progress and scheduling pieces: plain lines (one per image, with where it went and its digest) without a
 * terminal, nothing on stderr with --json; the upload pool's priority order; one tar index for verify-then-open;
 * config's scheme rule for loopback registries.
 */
import test from 'ava'
import {copyFile, utimes} from 'node:fs/promises'
import {join} from 'node:path'
import {peerTest} from '../harness/peers.js'
import {BundleReader} from '../../src/bundle/reader.js'
import {Limiter, type PushReport} from '../../src/registry/push.js'
import {bundleIndex, createBundle, fixtureBundle, randomName, tempDir} from './helpers.js'
import {runCli} from '../helpers/cli.js'

peerTest('push without a terminal prints one plain line per image (bytes, names, digest); --json prints no progress', ['registries'], async (t, peers) => {
  const peer = peers.registries.open
  const path = await createBundle(peer.host, ['linux/amd64'])
  const images = await bundleIndex(path)
  const dest = `${peer.host}/${randomName('progress')}`
  const r = await runCli(['push', path, dest])
  t.is(r.code, 0, r.stderr)
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('pushed '))
  t.is(lines.length, images.length, r.stderr)
  for (const image of images) {
    const line = lines.find((l) => l.startsWith(`pushed ${image.name} `))
    t.truthy(line, `a line for ${image.name}`)
    t.regex(line!, /\d+(\.\d)? [kM]?B\/\d+(\.\d)? [kM]?B/, 'bytes done/total')
    t.true(line!.includes(`→ ${dest}/`), line)
  }
  // CoreDNS: both names on one line, with the digest every name points at.
  const coredns = lines.find((l) => l.includes('coredns/coredns:'))!
  // (A one-platform bundle: distribution refuses the sparse index, so each name says it got the filtered one.)
  t.regex(coredns, new RegExp(`${dest}/coredns/coredns:v1\\.11\\.3 \\(filtered index\\), ${dest}/coredns:v1\\.11\\.3 \\(filtered index\\) sha256:[a-f0-9]{64}$`))
  t.regex(r.stderr, /to push/)

  const json = await runCli(['push', path, `${peer.host}/${randomName('progress-json')}`, '--json'])
  t.is(json.code, 0, json.stderr)
  t.notRegex(json.stderr, /pushed|uploading/)
  t.true((JSON.parse(json.stdout) as PushReport).blobs.uploaded > 0)
})

test('the upload pool starts waiting work highest priority first (largest blob), arrival order among equals', async (t) => {
  const limiter = new Limiter(1)
  const started: string[] = []
  let release!: () => void
  const first = limiter.run(() => new Promise<void>((resolve) => (release = resolve)), 0)
  const jobs = [
    ['small', 10],
    ['big', 1000],
    ['medium', 100],
    ['big-2', 1000],
  ].map(([name, priority]) =>
    limiter.run(async () => {
      started.push(name as string)
    }, priority as number),
  )
  release()
  await Promise.all([first, ...jobs])
  t.deepEqual(started, ['big', 'big-2', 'medium', 'small'])
})

test('the upload pool never runs more than its size at once', async (t) => {
  const limiter = new Limiter(3)
  let active = 0
  let peak = 0
  await Promise.all(
    Array.from({length: 20}, (_, i) =>
      limiter.run(async () => {
        active++
        peak = Math.max(peak, active)
        await new Promise((resolve) => setTimeout(resolve, 1 + (i % 3)))
        active--
      }, i % 4),
    ),
  )
  t.is(peak, 3)
})

test('opening an unchanged bundle again reuses its index (verify then push: one pass); a changed file is indexed again', async (t) => {
  const {path} = await fixtureBundle()
  const copy = join(await tempDir('reuse'), 'b.tar')
  await copyFile(path, copy)
  const a = await BundleReader.open(copy)
  const b = await BundleReader.open(copy)
  t.is(a.index, b.index, 'same file, unchanged: the index is reused')
  // Same content, new mtime: indexed again (the stamp includes mtime/ctime).
  await utimes(copy, new Date(), new Date(Date.now() - 60_000))
  const c = await BundleReader.open(copy)
  t.not(c.index, b.index)
  t.deepEqual([...c.index.entries.keys()], [...b.index.entries.keys()])
  // Another file: its own index.
  const d = await BundleReader.open(path)
  t.not(d.index, c.index)
})

test('config keeps https:// for a loopback registry but says how to get http://; http:// written or --insecure-registry gives http://', async (t) => {
  const dir = await tempDir('config-scheme')
  const loopback = await runCli(['config', '--registry', '127.0.0.1:5000/k8s', '--for', 'hosts', '-o', join(dir, 'a')])
  t.is(loopback.code, 0, loopback.stderr)
  t.regex(loopback.stderr, /^note: 127\.0\.0\.1:5000 is a loopback address.*--insecure-registry 127\.0\.0\.1:5000/m)
  const printed = await runCli(['config', '--registry', '127.0.0.1:5000/k8s', '--for', 'hosts'])
  t.regex(printed.stdout, /\[host\."https:\/\/127\.0\.0\.1:5000\/v2\/k8s"\]/)

  const explicit = await runCli(['config', '--registry', 'http://127.0.0.1:5000/k8s', '--for', 'hosts'])
  t.is(explicit.code, 0, explicit.stderr)
  t.regex(explicit.stdout, /\[host\."http:\/\/127\.0\.0\.1:5000\/v2\/k8s"\]/)
  t.notRegex(explicit.stderr, /loopback/)

  const insecure = await runCli(['config', '--registry', 'localhost:5000', '--for', 'hosts', '--insecure-registry', 'localhost:5000'])
  t.regex(insecure.stdout, /\[host\."http:\/\/localhost:5000"\]/)
  t.notRegex(insecure.stderr, /loopback/)

  const remote = await runCli(['config', '--registry', 'registry.corp:5000/k8s', '--for', 'hosts'])
  t.notRegex(remote.stderr, /loopback/)
})
