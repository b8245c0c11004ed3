/**
 * Layers unpacked by containerd from a bundle match the registry's — proven on the containerd peer, per image of
 * the test set, for this machine's platform (what `ctr images import` unpacks by default):
 *
 * 1. The registry's side, read independently of kubeferry: skopeo gives the index, the platform manifest and the
 *    config (`rootfs.diff_ids`); every layer blob is fetched from the registry, gunzipped and hashed, and must hash
 *    to its diff_id — so the diff_ids ARE the digests of the uncompressed layers the registry serves.
 * 2. The bundle is imported with `ctr images import` into a private namespace. containerd's stored manifest names
 *    the registry's config digest, and its stored config bytes are the registry's.
 * 3. Unpack proof: containerd extracts each layer while hashing the uncompressed stream and refuses a layer whose
 *    hash differs from the config's diff_id ("wrong diff id calculated on extraction", shown by the negative control
 *    below); only then does it commit the snapshot under the layer's chain ID. So a committed snapshot chain
 *    chainID(diff_ids[0..i]) with the right parents, built from the REGISTRY's diff_ids, and `ctr images check`
 *    saying `complete … true`, mean containerd unpacked exactly the registry's uncompressed layers.
 * 4. Belt and braces (root only): `ctr images mount` the image and compare the mounted file tree (type, content
 *    sha256, mode, symlink target) with the registry's layers applied in order (whiteouts honoured).
 * Negative control: an image whose config lies about its diff_id is refused at unpack, with no snapshot left.
 */
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, posix} from 'node:path'
import {PassThrough, Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGunzip, gzipSync} from 'node:zlib'
import test from 'ava'
import tar from 'tar-stream'
import {request} from 'undici'
import {hostPlatform, parsePlatform, platformMatches} from '../../src/oci/platform.js'
import {loadPeers, missingPeer, peerTest, type Peers} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'

const host = hostPlatform()
const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`

interface Run {
  code: number
  stdout: string
  stderr: string
}
function exec(file: string, args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, {timeout: 60_000, maxBuffer: 32 * 1024 * 1024, encoding: 'buffer'}, (error, stdout, stderr) => {
      done({code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout: stdout.toString('latin1'), stderr: stderr.toString()})
    })
  })
}
/** Output bytes exactly (content digests are checked on them). */
function execBytes(file: string, args: string[]): Promise<Buffer> {
  return new Promise((done, fail) => {
    execFile(file, args, {timeout: 60_000, maxBuffer: 32 * 1024 * 1024, encoding: 'buffer'}, (error, stdout, stderr) => {
      if (error) fail(new Error(`${file} ${args.join(' ')}: ${stderr.toString() || error.message}`))
      else done(stdout)
    })
  })
}

let work = ''
let bundle = ''
let buildError: string | undefined

test.before(async () => {
  if (missingPeer(['registries', 'containerd', 'skopeo'])) return
  const peers = loadPeers()!
  work = await mkdtemp(join(tmpdir(), 'kf-unpack-test-'))
  bundle = join(work, 'k8s.tar')
  const url = peers.registries.open.url
  const r = await runCli(['create', '-o', bundle, '--cache-dir', join(work, 'cache'), '--no-progress', '--json',
    ...peers.images.flatMap((i) => ['--image', i.name]), '--platform', 'linux/amd64', '--platform', 'linux/arm64',
    '--mirror', `registry.k8s.io=${url}`, '--mirror', `docker.io=${url}`])
  if (r.code !== 0) buildError = r.stderr
})

test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

// ---- the registry's layers, applied as a file tree -------------------------------------------------------------

/** path → "dir" | "file <sha256> <mode>" | "symlink <target>" */
type Tree = Map<string, string>

interface LayerEntry {
  name: string
  type: string
  mode: number
  linkname?: string
  sha?: string
}

/** GET the blob from the registry, gunzip, hash the uncompressed bytes (the diff_id) and list its entries. */
async function readLayer(registryUrl: string, repository: string, digest: string): Promise<{diffId: string; entries: LayerEntry[]}> {
  const response = await request(`${registryUrl}/v2/${repository}/blobs/${digest}`) // the open peer serves blobs itself (no redirect)
  if (response.statusCode !== 200) throw new Error(`GET blob ${digest} of ${repository}: HTTP ${response.statusCode}`)
  const compressed = createHash('sha256')
  const uncompressed = createHash('sha256')
  const hashing = (h: ReturnType<typeof createHash>) =>
    new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        h.update(chunk)
        callback(null, chunk)
      },
    })
  const entries: LayerEntry[] = []
  const extract = tar.extract()
  extract.on('entry', (header, stream, next) => {
    const h = createHash('sha256')
    stream.on('data', (chunk) => {
      h.update(chunk as Buffer)
    })
    stream.on('end', () => {
      entries.push({name: header.name, type: header.type ?? 'file', mode: (header.mode ?? 0) & 0o7777, linkname: header.linkname ?? undefined, sha: h.digest('hex')})
      next()
    })
  })
  await pipeline(response.body, hashing(compressed), createGunzip(), hashing(uncompressed), extract)
  if (`sha256:${compressed.digest('hex')}` !== digest) throw new Error(`blob ${digest} of ${repository} does not match its digest`)
  return {diffId: `sha256:${uncompressed.digest('hex')}`, entries}
}

function applyLayer(tree: Tree, entries: LayerEntry[]): void {
  const removeUnder = (dir: string, self: boolean) => {
    for (const key of [...tree.keys()]) if ((self && key === dir) || dir === '' || key.startsWith(`${dir}/`)) tree.delete(key)
  }
  for (const entry of entries) {
    const path = posix.normalize(entry.name).replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '')
    if (path === '' || path === '.') continue
    const base = posix.basename(path)
    const parent = posix.dirname(path) === '.' ? '' : posix.dirname(path)
    if (base === '.wh..wh..opq') {
      if (parent) removeUnder(parent, false)
      else tree.clear()
      continue
    }
    if (base.startsWith('.wh.')) {
      removeUnder(parent ? `${parent}/${base.slice(4)}` : base.slice(4), true)
      continue
    }
    for (let p = parent; p; p = posix.dirname(p) === '.' ? '' : posix.dirname(p)) if (!tree.has(p)) tree.set(p, 'dir')
    if (entry.type !== 'directory' && tree.get(path) === 'dir') removeUnder(path, true)
    if (entry.type === 'directory') tree.set(path, 'dir')
    else if (entry.type === 'symlink') tree.set(path, `symlink ${entry.linkname}`)
    else if (entry.type === 'link') tree.set(path, tree.get(posix.normalize(entry.linkname ?? '').replace(/^(\.\/|\/)+/, '')) ?? `dangling hardlink ${entry.linkname}`)
    else if (entry.type === 'file' || entry.type === 'contiguous-file') tree.set(path, `file ${entry.sha} ${entry.mode.toString(8)}`)
    else tree.set(path, entry.type)
  }
}

async function walk(root: string, tree: Tree = new Map(), rel = ''): Promise<Tree> {
  for (const name of (await readdir(join(root, rel))).sort()) {
    const path = rel ? `${rel}/${name}` : name
    const info = await lstat(join(root, path))
    if (info.isDirectory()) {
      tree.set(path, 'dir')
      await walk(root, tree, path)
    } else if (info.isSymbolicLink()) tree.set(path, `symlink ${await readlink(join(root, path))}`)
    else if (info.isFile()) tree.set(path, `file ${createHash('sha256').update(await readFile(join(root, path))).digest('hex')} ${(info.mode & 0o7777).toString(8)}`)
    else tree.set(path, 'special')
  }
  return tree
}

const sorted = (tree: Tree): string[] => [...tree].map(([k, v]) => `${k}: ${v}`).sort()

/** chainID(L0) = diffID(L0); chainID(L0..Ln) = sha256(chainID(L0..Ln-1) + " " + diffID(Ln)) — the image-spec rule. */
function chainIds(diffIds: string[]): string[] {
  const chain: string[] = []
  for (const diffId of diffIds) chain.push(chain.length === 0 ? diffId : sha256(`${chain[chain.length - 1]} ${diffId}`))
  return chain
}

// ---- containerd ------------------------------------------------------------------------------------------------

function containerd(peers: Peers, namespace: string) {
  const base = ['--address', peers.containerd!.address, '--namespace', namespace]
  const snapshotter = peers.containerd!.snapshotter
  return {
    snapshotter,
    run: (...args: string[]) => exec('ctr', [...base, ...args]),
    content: (digest: string) => execBytes('ctr', [...base, 'content', 'get', digest]),
    /** key → {parent, kind} */
    snapshots: async () => {
      const r = await exec('ctr', [...base, 'snapshots', '--snapshotter', snapshotter, 'ls'])
      if (r.code !== 0) throw new Error(r.stderr)
      const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/))
      return new Map(rows.map((row) => (row.length >= 3 ? [row[0], {parent: row[1], kind: row[2]}] : [row[0], {parent: '', kind: row[1]}])))
    },
    cleanup: async () => {
      const names = (await exec('ctr', [...base, 'images', 'ls', '-q'])).stdout.trim().split('\n').filter(Boolean)
      if (names.length) await exec('ctr', [...base, 'images', 'rm', '--sync', ...names])
      await exec('ctr', ['--address', peers.containerd!.address, 'namespaces', 'rm', namespace])
    },
  }
}

const skopeoRaw = async (peers: Peers, ref: string, config = false): Promise<Buffer> =>
  execBytes(peers.tools.skopeo, ['inspect', '--raw', ...(config ? ['--config'] : []), '--tls-verify=false', `docker://${peers.registries.open.host}/${ref}`])

interface Descriptor {
  digest: string
  platform?: {os: string; architecture: string; variant?: string}
}

peerTest.serial('containerd unpacks exactly the registry layers: config digest, diff_ids, committed chain IDs, mounted tree', ['registries', 'containerd', 'skopeo'], async (t, peers) => {
  if (buildError) return t.fail(`create failed: ${buildError}`)
  const ctr = containerd(peers, `kf-unpack-${process.pid}`)
  const mountAsRoot = process.getuid?.() === 0
  if (!mountAsRoot) t.log('not root: the mounted-tree comparison (step 4) is skipped; steps 1-3 still prove the unpack')
  try {
    const imported = await ctr.run('images', 'import', '--snapshotter', ctr.snapshotter, bundle)
    t.is(imported.code, 0, imported.stderr)
    const listed = new Map((await ctr.run('images', 'ls')).stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)).map((r) => [r[0], r[2]]))
    const check = new Map((await ctr.run('images', 'check')).stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)).map((r) => [r[0], r.slice(3).join(' ')]))
    const snapshots = await ctr.snapshots()
    let layers = 0
    let compared = 0

    for (const image of peers.images) {
      const ref = image.name.replace(/^[^/]+\//, '') // repository:tag inside the registry
      const repository = image.repository
      // 1. the registry's side
      const indexBytes = await skopeoRaw(peers, ref)
      t.is(sha256(indexBytes), image.digest, `${image.name}: registry index digest`)
      const index = JSON.parse(indexBytes.toString()) as {manifests: Descriptor[]}
      const entry = index.manifests.find((m) => platformMatches(host, m.platform ? parsePlatform([m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/')) : undefined))
      if (!entry) return t.fail(`${image.name} has no ${host.os}/${host.architecture} manifest`)
      const manifestBytes = await skopeoRaw(peers, `${repository}@${entry.digest}`)
      t.is(sha256(manifestBytes), entry.digest)
      const manifest = JSON.parse(manifestBytes.toString()) as {config: Descriptor; layers: Descriptor[]}
      const configBytes = await skopeoRaw(peers, `${repository}@${entry.digest}`, true)
      t.is(sha256(configBytes), manifest.config.digest, `${image.name}: registry config bytes match the config digest`)
      const diffIds = (JSON.parse(configBytes.toString()) as {rootfs: {diff_ids: string[]}}).rootfs.diff_ids
      t.is(diffIds.length, manifest.layers.length)
      const expected: Tree = new Map()
      for (const [i, layer] of manifest.layers.entries()) {
        const read = await readLayer(peers.registries.open.url, repository, layer.digest)
        t.is(read.diffId, diffIds[i], `${image.name}: layer ${i} uncompressed = diff_id`)
        applyLayer(expected, read.entries)
        layers++
      }

      // 2. what containerd stored
      t.is(listed.get(image.name), image.digest, `${image.name}: containerd keeps the upstream index digest`)
      const storedManifest = JSON.parse((await ctr.content(entry.digest)).toString()) as {config: Descriptor}
      t.is(storedManifest.config.digest, manifest.config.digest, `${image.name}: containerd's config digest = registry's`)
      t.is(sha256(await ctr.content(manifest.config.digest)), manifest.config.digest)

      // 3. unpacked: the committed chain of the registry's diff_ids
      t.regex(check.get(image.name) ?? '', /^complete \(\d+\/\d+\) .* true$/, `${image.name}: ctr images check says complete and unpacked`)
      const chain = chainIds(diffIds)
      for (const [i, id] of chain.entries()) {
        const snapshot = snapshots.get(id)
        t.is(snapshot?.kind, 'Committed', `${image.name}: layer ${i} committed as chain ID ${id}`)
        t.is(snapshot?.parent ?? '', i === 0 ? '' : chain[i - 1], `${image.name}: layer ${i} on top of layer ${i - 1}`)
      }

      // 4. the mounted rootfs is the registry's layers applied in order
      if (mountAsRoot) {
        const target = join(work, 'mnt', image.name.replace(/[^a-z0-9.-]/gi, '_'))
        await mkdir(target, {recursive: true})
        const mounted = await ctr.run('images', 'mount', '--snapshotter', ctr.snapshotter, image.name, target)
        t.is(mounted.code, 0, mounted.stderr)
        try {
          t.deepEqual(sorted(await walk(target)), sorted(expected), `${image.name}: mounted rootfs = registry layers applied`)
          compared += expected.size
        } finally {
          const un = await ctr.run('images', 'unmount', '--rm', target)
          t.is(un.code, 0, un.stderr)
        }
      }
    }
    t.log(`${peers.images.length} images, ${layers} layers (${host.os}/${host.architecture}) unpacked by containerd (${ctr.snapshotter}) match the registry's; ${compared} mounted paths compared`)
  } finally {
    await ctr.cleanup()
  }
})

/** One-image OCI archive whose config claims a diff_id that is not its layer's. */
async function liarArchive(path: string): Promise<{claimed: string; real: string; name: string}> {
  const pack = tar.pack()
  const layerTar = await new Promise<Buffer>((done) => {
    const inner = tar.pack()
    const chunks: Buffer[] = []
    inner.on('data', (c) => {
      chunks.push(c as Buffer)
    })
    inner.on('end', () => done(Buffer.concat(chunks)))
    inner.entry({name: 'etc/hello', mode: 0o644, mtime: new Date(0)}, 'hello\n')
    inner.finalize()
  })
  const layer = gzipSync(layerTar)
  const claimed = sha256('not the layer')
  const config = Buffer.from(JSON.stringify({architecture: host.architecture, os: host.os, rootfs: {type: 'layers', diff_ids: [claimed]}}))
  const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length},
    layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length}]}))
  const name = `example.test/kf-unpack-liar-${process.pid}:1`
  const index = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length, annotations: {'io.containerd.image.name': name}}]}))
  const out = new PassThrough()
  const chunks: Buffer[] = []
  out.on('data', (c) => {
    chunks.push(c as Buffer)
  })
  pack.pipe(out)
  pack.entry({name: 'oci-layout'}, '{"imageLayoutVersion":"1.0.0"}')
  pack.entry({name: 'index.json'}, index)
  for (const blob of [layer, config, manifest]) pack.entry({name: `blobs/sha256/${sha256(blob).slice(7)}`}, blob)
  pack.finalize()
  await new Promise((done) => out.on('end', done))
  await writeFile(path, Buffer.concat(chunks))
  return {claimed, real: sha256(layerTar), name}
}

peerTest('negative control: containerd refuses to unpack a layer whose content differs from the config diff_id', ['containerd'], async (t, peers) => {
  const dir = await mkdtemp(join(tmpdir(), 'kf-unpack-liar-'))
  const ctr = containerd(peers, `kf-unpack-liar-${process.pid}`)
  try {
    const archive = join(dir, 'liar.tar')
    const {claimed, real, name} = await liarArchive(archive)
    const r = await ctr.run('images', 'import', '--snapshotter', ctr.snapshotter, archive)
    t.not(r.code, 0, 'ctr import fails')
    t.true(r.stderr.includes(`wrong diff id calculated on extraction "${real}"`), r.stderr)
    const check = (await ctr.run('images', 'check')).stdout
    t.regex(check, new RegExp(`${name.replace(/[.]/g, '\\.')}\\s.*\\sfalse\\s*$`, 'm'), 'the image is not unpacked')
    const snapshots = await ctr.snapshots()
    t.false(snapshots.has(claimed), 'no snapshot under the claimed chain ID')
    t.false(snapshots.has(real), 'no snapshot under the real one either')
  } finally {
    await ctr.cleanup()
    await rm(dir, {recursive: true, force: true})
  }
})
