/**
 * `create --split` (issue 20): a bundle written as parts NAME.tar.001, … straight from the downloads. Against the
 * real peers: the two-platform kubeadm v1.31.6 test set (every test image) built once whole and once in parts of
 * 300,000 bytes (≥ 4 parts: the set is ~1.26 MB, and the CLI's 1 MiB floor would give two, so the library is called
 * with the size), same inputs and SOURCE_DATE_EPOCH: the parts concatenated are the whole bundle byte for byte,
 * `sha256sum -c` passes on both checksum files, and `cat` of the parts feeds the real `ctr import` and `docker load`.
 * Through the CLI: --split 1MiB lists its parts in --json; a rerun with a larger size leaves one part and no stale
 * one; a bad size is a usage error before any download; Ctrl-C and kill -9 leave no part under a final name.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, readdirSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test, {type ExecutionContext} from 'ava'
import {buildBundle, type BuildSummary} from '../../src/bundle/build.js'
import {partPath, partsChecksumPath} from '../../src/bundle/parts-naming.js'
import {anonymousCredentials} from '../../src/registry/auth/credentials.js'
import {RegistryClient} from '../../src/registry/client.js'
import {registrySource} from '../../src/registry/source.js'
import {BlobStore} from '../../src/store/blob-store.js'
import {startFaultProxy} from '../faults/proxy.js'
import {assertCleanError, runCli} from '../faults/helpers.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'

const PLATFORMS = ['linux/amd64', 'linux/arm64']
const PART = 300_000
const EPOCH = 1_700_000_000
const FINAL_PART = /^k8s\.tar\.\d{3}$/

let work = ''
let whole: BuildSummary | undefined
let split: BuildSummary | undefined
let buildError: string | undefined

async function build(peers: Peers, dir: string, partSize?: number): Promise<BuildSummary> {
  await mkdir(dir, {recursive: true})
  const url = peers.registries.open.url
  const client = new RegistryClient({mirrors: {'registry.k8s.io': [url], 'docker.io': [url]}, credentials: anonymousCredentials})
  try {
    return await buildBundle({
      source: registrySource(client),
      store: await BlobStore.open(join(dir, 'cache')),
      requests: peers.images.map((i) => ({reference: i.name})),
      platforms: PLATFORMS,
      output: join(dir, 'k8s.tar'),
      request: {platforms: PLATFORMS, kubernetesVersion: 'v1.31.6'},
      sourceDateEpoch: EPOCH,
      fsync: false,
      partSize,
    })
  } finally {
    await client.close()
  }
}

test.before(async () => {
  if (missingPeer(['registries'])) return
  const peers = loadPeers()!
  work = await mkdtemp(join(tmpdir(), 'kubeferry-split-test-'))
  try {
    whole = await build(peers, join(work, 'whole'))
    split = await build(peers, join(work, 'split'), PART)
  } catch (error) {
    buildError = (error as Error).message
  }
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

function built(t: ExecutionContext): {whole: BuildSummary; split: BuildSummary} | undefined {
  if (!whole || !split) t.fail(`bundles were not built: ${buildError ?? 'unknown'}`)
  return whole && split ? {whole, split} : undefined
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')
const partFiles = (summary: BuildSummary): string[] => summary.parts!.map((p) => p.path)

peerTest('split: ≥ 4 parts whose concatenation is the whole bundle byte for byte, with its sha256 and checksum file', ['registries'], async (t) => {
  const b = built(t)
  if (!b) return
  const parts = b.split.parts!
  t.true(parts.length >= 4, `${parts.length} parts`)
  t.is(parts.length, Math.ceil(b.whole.size / PART))
  t.deepEqual(partFiles(b.split), parts.map((_, i) => partPath(b.split.output, i + 1)))
  const bytes = await Promise.all(parts.map((p) => readFile(p.path)))
  bytes.forEach((data, i) => {
    t.is(data.length, i < parts.length - 1 ? PART : b.whole.size - PART * (parts.length - 1), `size of part ${i + 1}`)
    t.is(sha256(data), parts[i].sha256, `summary sha256 of part ${i + 1}`)
  })
  const wholeBytes = await readFile(b.whole.output)
  t.true(Buffer.concat(bytes).equals(wholeBytes), 'cat of the parts = the unsplit bundle')
  t.is(b.split.sha256, b.whole.sha256)
  t.is(b.split.size, b.whole.size)
  t.is(await readFile(b.split.checksumFile, 'utf8'), await readFile(b.whole.checksumFile, 'utf8'), 'NAME.tar.sha256: same hex, same name')
  t.true((await readFile(b.split.installScript)).equals(await readFile(b.whole.installScript)), 'install.sh beside: unchanged')
  const names = (await readdir(join(work, 'split'))).filter((n) => n !== 'cache').sort()
  t.deepEqual(names, ['k8s.install.sh', 'k8s.parts.sha256', 'k8s.tar.sha256', ...parts.map((_, i) => `k8s.tar.${String(i + 1).padStart(3, '0')}`)].sort(), 'no .partial, no whole file')
})

peerTest('split: sha256sum -c passes on NAME.parts.sha256, and on NAME.tar.sha256 after cat of the parts', ['registries'], async (t) => {
  const b = built(t)
  if (!b) return
  const dir = join(work, 'split')
  t.is(b.split.partsChecksumFile, partsChecksumPath(b.split.output))
  const check = spawnSync('sha256sum', ['-c', 'k8s.parts.sha256'], {cwd: dir, encoding: 'utf8'})
  t.is(check.status, 0, check.stdout + check.stderr)
  t.is(check.stdout.trim().split('\n').filter((l) => / OK$/.test(l)).length, b.split.parts!.length)
  const joined = join(work, 'joined')
  await mkdir(joined, {recursive: true})
  execFileSync('sh', ['-c', `cat "${dir}"/k8s.tar.0* > "${joined}/k8s.tar" && cp "${dir}/k8s.tar.sha256" "${joined}/"`])
  const whole = spawnSync('sha256sum', ['-c', 'k8s.tar.sha256'], {cwd: joined, encoding: 'utf8'})
  t.is(whole.status, 0, whole.stdout + whole.stderr)
  // And it can fail: a part changed by one byte is named.
  const bad = join(work, 'bad')
  await mkdir(bad, {recursive: true})
  execFileSync('sh', ['-c', `cp "${dir}"/k8s.tar.0* "${dir}/k8s.parts.sha256" "${bad}/"`])
  const part2 = await readFile(join(bad, 'k8s.tar.002'))
  part2[1000] ^= 1
  await writeFile(join(bad, 'k8s.tar.002'), part2)
  const broken = spawnSync('sha256sum', ['-c', 'k8s.parts.sha256'], {cwd: bad, encoding: 'utf8'})
  t.not(broken.status, 0)
  t.regex(broken.stdout, /k8s\.tar\.002: FAILED/)
})

peerTest('split: cat of the parts | ctr images import --platform linux/amd64 - names every image with its upstream digest', ['registries', 'containerd'], (t, peers) => {
  const b = built(t)
  if (!b) return
  const namespace = `kf-parts-write-${process.pid}`
  const ctrArgs = ['--address', peers.containerd!.address, '-n', namespace]
  try {
    const files = partFiles(b.split).map((p) => `"${p}"`).join(' ')
    execFileSync('sh', ['-c', `cat ${files} | ctr ${ctrArgs.join(' ')} images import --platform linux/amd64 -`], {stdio: ['ignore', 'pipe', 'pipe']})
    const rows = execFileSync('ctr', [...ctrArgs, 'images', 'ls'], {encoding: 'utf8'}).trim().split('\n').slice(1).map((l) => l.split(/\s+/))
    for (const image of peers.images) {
      const row = rows.find((r) => r[0] === image.name)
      t.truthy(row, `${image.name} imported`)
      if (row) t.is(row[2], image.digest, `${image.name} digest`)
    }
  } finally {
    const names = spawnSync('ctr', [...ctrArgs, 'images', 'ls', '-q'], {encoding: 'utf8'}).stdout.trim().split('\n').filter(Boolean)
    if (names.length) spawnSync('ctr', [...ctrArgs, 'images', 'rm', ...names])
  }
})

peerTest('split: cat of the parts | docker load loads every image', ['registries', 'dockerd'], (t, peers) => {
  const b = built(t)
  if (!b) return
  const files = partFiles(b.split).map((p) => `"${p}"`).join(' ')
  const out = execFileSync('sh', ['-c', `cat ${files} | docker -H "${peers.dockerd!.host}" load`], {encoding: 'utf8'})
  const loaded = out.split('\n').filter((l) => l.startsWith('Loaded image: ')).map((l) => l.slice('Loaded image: '.length))
  for (const image of peers.images) t.true(loaded.some((name) => image.name.endsWith(name) || name === image.name), `${image.name} loaded:\n${out}`)
})

function cliArgs(peers: Peers, registry: string, output: string, cache: string, split: string): string[] {
  return [
    'create', '-o', output, '--cache-dir', cache, '--json', '--no-progress', '--split', split,
    '--kubernetes-version', 'v1.31.6', '--runtime', 'containerd@1.7',
    ...peers.images.flatMap((i) => ['--image', i.name]),
    ...PLATFORMS.flatMap((p) => ['--platform', p]),
    '--mirror', `registry.k8s.io=${registry}`, '--mirror', `docker.io=${registry}`,
  ]
}

peerTest('create --split (CLI): --json lists the parts; a rerun that fits one part writes .001 and removes the stale .002', ['registries'], async (t, peers) => {
  const dir = join(work, 'cli')
  await mkdir(dir, {recursive: true})
  const output = join(dir, 'k8s.tar')
  const first = await runCli(cliArgs(peers, peers.registries.open.url, output, join(dir, 'cache'), '1MiB'))
  t.is(first.code, 0, first.stderr)
  const summary = JSON.parse(first.stdout) as BuildSummary
  t.is(summary.parts?.length, 2)
  t.is(summary.parts?.[0].size, 1024 * 1024)
  t.is(summary.parts!.reduce((n, p) => n + p.size, 0), summary.size)
  t.true(existsSync(partPath(output, 2)))
  const again = await runCli(cliArgs(peers, peers.registries.open.url, output, join(dir, 'cache'), '4MiB').filter((a) => a !== '--json'))
  t.is(again.code, 0, again.stderr)
  t.regex(again.stdout, /in 1 part \(it fits in one\)/)
  t.deepEqual((await readdir(dir)).filter((n) => FINAL_PART.test(n)), ['k8s.tar.001'], 'the stale second part is gone')
  t.is((await readFile(partsChecksumPath(output), 'utf8')).trim().split('\n').length, 1)
  t.false(existsSync(output), 'no whole file written')
})

peerTest('create --split: a size below 1 MiB or malformed is a usage error before anything is fetched', ['registries'], async (t, peers) => {
  const dir = join(work, 'bad-size')
  await mkdir(dir, {recursive: true})
  for (const [size, pattern] of [['1000', /less than the 1048576 \(1 MiB\)/], ['4XB', /invalid --split size "4XB"/], ['fat33', /invalid --split size/]] as const) {
    const r = await runCli(cliArgs(peers, peers.registries.open.url, join(dir, 'k8s.tar'), join(dir, 'cache'), size))
    assertCleanError(t, r, pattern, `--split ${size}`)
    t.regex(r.stderr, /hint: /)
  }
  t.deepEqual(await readdir(dir), [], 'no cache, no part')
})

async function interrupted(t: ExecutionContext, peers: Peers, name: string, signal: NodeJS.Signals) {
  const proxy = await startFaultProxy(peers.registries.open.url)
  t.teardown(() => proxy.close())
  const layers = peers.images.flatMap((i) => i.platforms.flatMap((p) => p.layers))
  const big = layers.reduce((a, b) => (b.size > a.size ? b : a))
  const bigPath = new RegExp(`/blobs/${big.digest}$`)
  proxy.setRules([{method: 'GET', path: bigPath, fault: {kind: 'trickle', chunkBytes: 32 * 1024, delayMs: 100}}])
  const dir = join(work, name)
  await mkdir(dir, {recursive: true})
  const output = join(dir, 'k8s.tar')
  const args = cliArgs(peers, proxy.url, output, join(dir, 'cache'), '1MiB')
  const r = await runCli(args, {
    onSpawn: (child) => {
      const started = Date.now()
      // Downloads begin while the plan is made, the parts only once it is known: a kill "mid-write" waits for a part.
      const writing = (): boolean => signal !== 'SIGKILL' || readdirSync(dir).some((n) => n.endsWith('.partial'))
      const poll = setInterval(() => {
        if ((proxy.log.some((l) => bigPath.test(l.path)) && writing()) || Date.now() - started > 60_000) {
          clearInterval(poll)
          setTimeout(() => child.kill(signal), 400)
        }
      }, 10)
    },
  })
  return {r, dir, output, args, proxy}
}

peerTest('create --split: Ctrl-C during the download exits 130 and leaves no part, partial or checksum file', ['registries'], async (t, peers) => {
  const {r, dir} = await interrupted(t, peers, 'sigint', 'SIGINT')
  t.is(r.code, 130, r.stderr)
  t.regex(r.stderr, /interrupted: no bundle was written/)
  t.deepEqual((await readdir(dir)).filter((n) => n !== 'cache'), [], 'nothing beside the cache')
})

peerTest('create --split: kill -9 mid-write leaves no part under a final name; the rerun completes and leaves no .partial', ['registries'], async (t, peers) => {
  const {r, dir, args, proxy} = await interrupted(t, peers, 'sigkill', 'SIGKILL')
  t.is(r.signal, 'SIGKILL')
  const left = (await readdir(dir)).filter((n) => n !== 'cache')
  t.deepEqual(left.filter((n) => FINAL_PART.test(n) || n === 'k8s.parts.sha256' || n === 'k8s.tar'), [], `left: ${left.join(', ')}`)
  t.true(left.some((n) => /^k8s\.tar\.\d{3}\.partial$/.test(n)), `the killed run was writing parts: ${left.join(', ')}`)
  proxy.setRules([])
  const again = await runCli(args)
  t.is(again.code, 0, again.stderr)
  const after = (await readdir(dir)).filter((n) => n !== 'cache').sort()
  t.deepEqual(after, ['k8s.install.sh', 'k8s.parts.sha256', 'k8s.tar.001', 'k8s.tar.002', 'k8s.tar.sha256'])
  t.is(spawnSync('sha256sum', ['-c', 'k8s.parts.sha256'], {cwd: dir}).status, 0)
})

peerTest('create to the same output, whole then split then whole: the directory never holds two bundles', ['registries'], async (t, peers) => {
  const dir = join(work, 'switch')
  await mkdir(dir, {recursive: true})
  const output = join(dir, 'k8s.tar')
  const args = cliArgs(peers, peers.registries.open.url, output, join(dir, 'cache'), '1MiB')
  const unsplit = args.filter((a, i) => a !== '--split' && args[i - 1] !== '--split')
  const names = async (): Promise<string[]> => (await readdir(dir)).filter((n) => n !== 'cache').sort()
  const whole1 = await runCli(unsplit)
  t.is(whole1.code, 0, whole1.stderr)
  t.deepEqual(await names(), ['k8s.install.sh', 'k8s.tar', 'k8s.tar.sha256'])
  const parts = await runCli(args)
  t.is(parts.code, 0, parts.stderr)
  t.deepEqual(await names(), ['k8s.install.sh', 'k8s.parts.sha256', 'k8s.tar.001', 'k8s.tar.002', 'k8s.tar.sha256'], 'the whole file went')
  const whole2 = await runCli(unsplit)
  t.is(whole2.code, 0, whole2.stderr)
  t.deepEqual(await names(), ['k8s.install.sh', 'k8s.tar', 'k8s.tar.sha256'], 'the parts and their checksums went')
  t.is(spawnSync('sha256sum', ['-c', 'k8s.tar.sha256'], {cwd: dir}).status, 0)
})
