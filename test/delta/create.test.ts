/**
 * `create --base` (issue 20) against the real test registry: a delta from the v1.31.0 control-plane bundle to the
 * v1.31.6 one carries every manifest, index and config but only the layers v1.31.0 lacks; made from the bundle, its
 * bundle.json or its lockfile it is the same delta; `verify` checks its own blobs and says what it relies on;
 * `inspect` shows the bytes saved; `serve` serves it together with its base (alone it is refused); a full bundle's
 * install.sh has no delta part.
 */
import {execFileSync} from 'node:child_process'
import {writeFile, rm} from 'node:fs/promises'
import {join} from 'node:path'
import test from 'ava'
import {DELTA_ONLY_PARTS, installScriptTemplate} from '../../src/bundle/install-template.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {startCli, stopCli} from '../serve/helpers.js'
import {createHash} from 'node:crypto'
import {blobEntries, create, makeDeltaSets, metadataOf, readText, tempDir, V1_31_6} from './helpers.js'

let dir = ''
let setup: string | undefined

test.before(async () => {
  if (missingPeer(['registries'])) return
  const peers = loadPeers()!
  dir = await tempDir('create')
  setup = await makeDeltaSets(peers, dir)
})

test.after.always(async () => {
  if (dir) await rm(dir, {recursive: true, force: true})
})

const ready = (t: {fail(m: string): void}): boolean => {
  if (setup) t.fail(setup)
  return !setup
}

peerTest('a delta carries every manifest and config and only the layers its base lacks; bundle.json names the base and what it relies on', ['registries'], async (t) => {
  if (!ready(t)) return
  const full = blobEntries(join(dir, 'v6.tar'))
  const base = new Set(blobEntries(join(dir, 'v0.tar')))
  const delta = blobEntries(join(dir, 'd6.tar'))
  const meta = await metadataOf(join(dir, 'd6.tar'))
  const fullMeta = await metadataOf(join(dir, 'v6.tar'))
  t.deepEqual(meta.images, fullMeta.images, 'the full image list and metadata')
  t.is(fullMeta.delta, undefined)
  const relied = new Set(meta.delta!.relies.map((b) => `blobs/sha256/${b.digest.slice(7)}`))
  t.deepEqual(delta, full.filter((e) => !relied.has(e)), 'the delta is the full bundle minus what it relies on')
  for (const entry of relied) t.true(base.has(entry), `${entry} is in the base`)
  // every layer of v1.31.6 that v1.31.0 holds is left out; manifests and configs never are
  const layers = new Set(fullMeta.images.flatMap((i) => i.platforms.flatMap((p) => p.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`))))
  t.deepEqual([...relied].sort(), full.filter((e) => layers.has(e) && base.has(e)))
  t.is(meta.delta!.base.kind, 'bundle')
  t.is(meta.delta!.base.sha256, (await readText(join(dir, 'v0.tar.sha256'))).split(/\s+/)[0])
  t.deepEqual(meta.delta!.for, ['push', 'load'])
  t.is(meta.blobs.count, delta.length)
  const [fullSize, deltaSize] = ['v6.tar', 'd6.tar'].map((n) => Number(execFileSync('stat', ['-c', '%s', join(dir, n)], {encoding: 'utf8'})))
  t.true(deltaSize < fullSize / 3, `${deltaSize} vs ${fullSize}`)
  t.log(`figures: full v1.31.6 bundle ${fullSize} B, delta against v1.31.0 ${deltaSize} B (${((100 * deltaSize) / fullSize).toFixed(1)} %), ${meta.delta!.relies.length} layers relied on (${meta.delta!.savedBytes} B)`)
})

peerTest('the same delta from the base bundle, its bundle.json and its lockfile', ['registries'], async (t) => {
  if (!ready(t)) return
  const peers = loadPeers() as Peers
  const bundleJson = join(dir, 'v0.bundle.json')
  await writeFile(bundleJson, execFileSync('tar', ['-xOf', join(dir, 'v0.tar'), 'kubeferry/bundle.json']))
  const lock = join(dir, 'v0.lock')
  const meta = await metadataOf(join(dir, 'v0.tar'))
  await writeFile(lock, JSON.stringify({version: 1, images: meta.images.map((i) => ({reference: i.name, digest: i.digest, mediaType: i.mediaType, platforms: i.platforms.map((p) => p.platform)}))}))
  const expected = blobEntries(join(dir, 'd6.tar'))
  for (const [name, base, kind] of [['from-json.tar', bundleJson, 'bundle'], ['from-lock.tar', lock, 'lockfile']]) {
    const r = await create(peers, dir, join(dir, name), [...V1_31_6], ['--base', base, '--json'])
    t.is(r.code, 0, r.stderr)
    t.deepEqual(blobEntries(join(dir, name)), expected, name)
    const m = await metadataOf(join(dir, name))
    t.is(String(m.delta!.base.kind), kind)
    t.is(m.delta!.base.sha256, undefined, 'no bundle sha256 is known from a bundle.json or a lockfile')
    t.is((JSON.parse(r.stdout) as {delta: {savedBytes: number}}).delta.savedBytes, m.delta!.savedBytes)
  }
})

peerTest('verify checks the delta\'s own blobs and says what it relies on; inspect shows the bytes saved', ['registries'], async (t) => {
  if (!ready(t)) return
  const d6 = join(dir, 'd6.tar')
  const v = await runCli(['verify', d6, '--json'])
  t.is(v.code, 0, v.stderr)
  const report = JSON.parse(v.stdout) as {ok: boolean; blobs: number; delta: {reliedBlobs: number; images: string[]; base: {kind: string}}}
  t.true(report.ok)
  t.is(report.blobs, blobEntries(d6).length)
  t.is(report.delta.base.kind, 'bundle')
  t.deepEqual(report.delta.images, [...V1_31_6].sort())
  const human = await runCli(['verify', d6])
  t.regex(human.stdout, /a delta against bundle v0\.tar .* relies on \d+ layers/)
  const i = await runCli(['inspect', d6])
  t.is(i.code, 0, i.stderr)
  t.regex(i.stdout, /delta against bundle v0\.tar .*layers not carried, .* saved/)
  // a damaged own blob is still found
  const broken = join(dir, 'broken.tar')
  execFileSync('cp', [d6, broken])
  const entry = blobEntries(d6)[0]
  const offset = Number(execFileSync('python3', ['-c', `import tarfile;print(tarfile.open('${broken}').getmember('${entry}').offset_data)`], {encoding: 'utf8'}))
  execFileSync('sh', ['-c', `printf 'X' | dd of="${broken}" bs=1 seek=${offset} conv=notrunc 2>/dev/null`])
  const bad = await runCli(['verify', broken])
  t.is(bad.code, 1)
  t.regex(bad.stderr, /DIGEST/)
})

peerTest('serve answers a delta together with its base as one registry; alone it is refused', ['registries', 'skopeo'], async (t) => {
  if (!ready(t)) return
  const alone = await runCli(['serve', join(dir, 'd6.tar'), '--listen', '127.0.0.1:0'], {timeoutMs: 30_000})
  t.not(alone.code, 0)
  t.regex(alone.stderr, /cannot serve this delta bundle alone: it relies on layer sha256:[0-9a-f]{64}/)
  t.regex(alone.stderr, /serve it together with its base/)
  const server = await startCli([join(dir, 'd6.tar'), join(dir, 'v0.tar'), '--listen', '127.0.0.1:0', '--json'])
  try {
    const {url} = JSON.parse(server.first) as {url: string}
    const host = new URL(url).host
    const meta = await metadataOf(join(dir, 'd6.tar'))
    for (const image of meta.images) {
      const ref = `${host}/${image.repository}:${image.tag}`
      const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])
      t.is(`sha256:${createHash('sha256').update(raw).digest('hex')}`, image.digest, ref)
    }
    // every blob of an image whose layers the delta relies on comes out (the relied-on ones from the base)
    const out = join(dir, 'copied')
    execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/kube-apiserver:v1.31.6`, `oci:${out}:x`], {stdio: 'ignore'})
    t.true(blobEntries(join(dir, 'd6.tar')).length > 0)
  } finally {
    await stopCli(server)
  }
})

test('a full bundle\'s install.sh has no delta part; a delta\'s has it', (t) => {
  const full = installScriptTemplate('full')
  const delta = installScriptTemplate('delta')
  t.true(DELTA_ONLY_PARTS.size > 0)
  t.false(full.includes('--- a delta bundle'))
  t.true(delta.includes('--- a delta bundle'))
  t.is(delta.length > full.length, true)
})
