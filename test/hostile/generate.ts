/**
 * Hostile bundles: a small valid bundle made by the real bundle builder from synthetic test images (no peers, no
 * network, deterministic), then rewritten entry by entry into bundles an attacker or a broken copy could hand a node.
 * The small ones are committed in fixtures/bundles/hostile/ (regenerate with `node scripts/gen-hostile-fixtures.mjs`);
 * the big ones (100 MB JSON, tar bomb) are made at test time with `generateLarge()` into a temp dir.
 */
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {createWriteStream} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {buildBundle} from '../../src/bundle/build.js'
import {sha256Digest} from '../../src/oci/digest.js'
import {BlobStore} from '../../src/store/blob-store.js'
import {layoutSource} from '../bundle/layout-source.js'
import {buildImageSet, hostPlatformString} from '../images/builder.js'
import {packTarEntries, readTarEntries, type TarEntry} from '../tar-entries.js'

export const BASE_IMAGES = ['registry.k8s.io/pause:3.10']
/** The base bundle carries the machine's own platform, so install.sh/load would import it here. */
export const BASE_PLATFORMS = [hostPlatformString().replace(/\/v8$/, '')]

export interface HostileCase {
  /** File name without .tar */
  name: string
  /** What is wrong, for the README and test titles. */
  what: string
}

export const SMALL_CASES: HostileCase[] = [
  {name: 'traversal', what: 'an extra entry named `../kubeferry-hostile-traversal` (path traversal)'},
  {name: 'absolute-path', what: 'an extra entry named `/tmp/kubeferry-hostile-absolute` (absolute path)'},
  {name: 'symlink', what: 'a symlink `escape -> /tmp` followed by a file `escape/kubeferry-hostile-symlink`'},
  {name: 'hardlink', what: 'a hard link `passwd` to `/etc/passwd`'},
  {name: 'blob-mismatch', what: "a layer blob whose bytes do not match its name (one byte flipped, same size)"},
  {name: 'missing-blob', what: 'a manifest pointing at a layer blob that is not in the bundle (entry and checksum line removed)'},
  {name: 'missing-manifest', what: "index.json pointing at an image index blob that is not in the bundle"},
  {name: 'duplicate-entry', what: 'index.json twice; the second copy names another image (what a loader reads depends on its order)'},
  {name: 'wrong-mediatype', what: 'index.json says the image is a layer (`application/vnd.oci.image.layer.v1.tar`)'},
  {name: 'mediatype-mismatch', what: 'index.json calls an OCI index a Docker manifest list (descriptor and content disagree)'},
  {name: 'schema1', what: 'the image replaced by a Docker schema1 manifest (`application/vnd.docker.distribution.manifest.v1+prettyjws`)'},
  {name: 'truncated', what: 'the tar cut off in the middle of a blob'},
]

/** Enough to hurt a loader that extracts (inodes), small enough to generate and refuse in about a second. */
export const TAR_BOMB_ENTRIES = 20_000

export const LARGE_CASES: HostileCase[] = [
  {name: 'huge-json', what: 'index.json of 100 MB (valid JSON, padded with spaces)'},
  {name: 'tar-bomb', what: `${TAR_BOMB_ENTRIES.toLocaleString('en')} empty entries after a valid bundle`},
]

type Entry = TarEntry

/** Only what the hostile cases keep of a header: name, mode, type (the rest comes from FIXED when packed). */
async function readEntries(bytes: Buffer): Promise<Entry[]> {
  return (await readTarEntries(bytes)).map(({header, data}) => ({header: {name: header.name, mode: header.mode, type: header.type}, data}))
}

const FIXED = {mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: ''}

const pack = (entries: Entry[]): Promise<Buffer> => packTarEntries(entries, {...FIXED, mode: 0o644})

const file = (name: string, data: Buffer | string): Entry => ({header: {name, type: 'file'}, data: Buffer.isBuffer(data) ? data : Buffer.from(data)})

interface Base {
  entries: Entry[]
  get(name: string): Entry
  json<T>(name: string): T
  /** SHA256SUMS with the lines of `drop` removed and `set` lines replaced/added. */
  sums(changes: {drop?: string[]; set?: Record<string, Buffer>}): Entry
  indexBlob: string
  manifestBlob: string
  layerBlob: string
}

function describeBase(entries: Entry[]): Base {
  const get = (name: string): Entry => {
    const e = entries.find((x) => x.header.name === name)
    if (!e) throw new Error(`base bundle has no ${name}`)
    return e
  }
  const json = <T>(name: string): T => JSON.parse(get(name).data.toString('utf8')) as T
  const index = json<{manifests: Array<{digest: string}>}>('index.json')
  const indexBlob = `blobs/sha256/${index.manifests[0].digest.slice(7)}`
  const child = json<{manifests: Array<{digest: string}>}>(indexBlob)
  const manifestBlob = `blobs/sha256/${child.manifests.find((m) => entries.some((e) => e.header.name === `blobs/sha256/${m.digest.slice(7)}`))!.digest.slice(7)}`
  const manifest = json<{layers: Array<{digest: string}>}>(manifestBlob)
  const layerBlob = `blobs/sha256/${manifest.layers.at(-1)!.digest.slice(7)}`
  return {
    entries,
    get,
    json,
    indexBlob,
    manifestBlob,
    layerBlob,
    sums({drop = [], set = {}}) {
      const lines = get('kubeferry/SHA256SUMS')
        .data.toString('utf8')
        .split('\n')
        .filter(Boolean)
        .filter((l) => !drop.includes(l.replace(/^[a-f0-9]{64}\s+\*?/, '')))
        .map((l) => {
          const path = l.replace(/^[a-f0-9]{64}\s+\*?/, '')
          return set[path] ? `${sha256Digest(set[path]).slice(7)}  ${path}` : l
        })
      for (const [path, bytes] of Object.entries(set)) if (!lines.some((l) => l.endsWith(`  ${path}`))) lines.push(`${sha256Digest(bytes).slice(7)}  ${path}`)
      return file('kubeferry/SHA256SUMS', `${lines.join('\n')}\n`)
    },
  }
}

/** Replace entries by name (keeping order), dropping those mapped to undefined; add the extra ones at the end. */
function edit(base: Base, changes: Record<string, Entry | undefined>, extra: Entry[] = []): Entry[] {
  const out: Entry[] = []
  for (const e of base.entries) {
    if (!(e.header.name! in changes)) out.push(e)
    else if (changes[e.header.name!]) out.push(changes[e.header.name!]!)
  }
  return [...out, ...extra]
}

async function buildBase(work: string): Promise<{tar: string; installScript: string}> {
  const set = await buildImageSet({dir: join(work, 'images'), only: BASE_IMAGES, platforms: BASE_PLATFORMS, busybox: false, layerSize: 256, baseLayerSize: 512})
  const output = join(work, 'base.tar')
  const summary = await buildBundle({
    source: layoutSource(set.images, (d) => set.blobPath(d)),
    store: await BlobStore.open(join(work, 'cache')),
    requests: BASE_IMAGES.map((reference) => ({reference, source: 'hostile fixture base'})),
    platforms: BASE_PLATFORMS,
    output,
    request: {images: BASE_IMAGES, platforms: BASE_PLATFORMS},
    sourceDateEpoch: 0,
    fsync: false,
  })
  return {tar: output, installScript: summary.installScript}
}

/** Write base.tar, base.install.sh and every small hostile case into `outDir`. Returns the files written. */
export async function generateSmall(outDir: string): Promise<string[]> {
  await mkdir(outDir, {recursive: true})
  const work = await mkdtemp(join(tmpdir(), 'kf-hostile-gen-'))
  try {
    const built = await buildBase(work)
    const baseBytes = await readFile(built.tar)
    const base = describeBase(await readEntries(baseBytes))
    const cases: Record<string, Buffer> = {}
    const extraFile = (name: string): Entry => file(name, 'written by a hostile bundle\n')

    cases.traversal = await pack([...base.entries, extraFile('../kubeferry-hostile-traversal')])
    cases['absolute-path'] = await pack([...base.entries, extraFile('/tmp/kubeferry-hostile-absolute')])
    cases.symlink = await pack([...base.entries, {header: {name: 'escape', type: 'symlink', linkname: '/tmp'}, data: Buffer.alloc(0)}, extraFile('escape/kubeferry-hostile-symlink')])
    cases.hardlink = await pack([...base.entries, {header: {name: 'passwd', type: 'link', linkname: '/etc/passwd'}, data: Buffer.alloc(0)}])

    const layer = Buffer.from(base.get(base.layerBlob).data)
    layer[Math.floor(layer.length / 2)] ^= 0xff
    cases['blob-mismatch'] = await pack(edit(base, {[base.layerBlob]: file(base.layerBlob, layer)}))

    cases['missing-blob'] = await pack(edit(base, {[base.layerBlob]: undefined, 'kubeferry/SHA256SUMS': base.sums({drop: [base.layerBlob]})}))
    cases['missing-manifest'] = await pack(edit(base, {[base.indexBlob]: undefined, 'kubeferry/SHA256SUMS': base.sums({drop: [base.indexBlob]})}))

    const index = base.json<{manifests: Array<Record<string, unknown> & {annotations?: Record<string, string>}>}>('index.json')
    const renamed = JSON.stringify({...index, manifests: index.manifests.map((m) => ({...m, annotations: {...m.annotations, 'io.containerd.image.name': 'registry.k8s.io/kube-apiserver:v1.31.6', 'org.opencontainers.image.ref.name': 'registry.k8s.io/kube-apiserver:v1.31.6'}}))})
    cases['duplicate-entry'] = await pack([...base.entries, file('index.json', renamed)])

    const withType = (mediaType: string): Buffer => Buffer.from(JSON.stringify({...index, manifests: index.manifests.map((m) => ({...m, mediaType}))}))
    const wrong = withType('application/vnd.oci.image.layer.v1.tar')
    cases['wrong-mediatype'] = await pack(edit(base, {'index.json': file('index.json', wrong), 'kubeferry/SHA256SUMS': base.sums({set: {'index.json': wrong}})}))
    const indexType = String(index.manifests[0].mediaType)
    const swapped = withType(indexType.includes('oci') ? 'application/vnd.docker.distribution.manifest.list.v2+json' : 'application/vnd.oci.image.index.v1+json')
    cases['mediatype-mismatch'] = await pack(edit(base, {'index.json': file('index.json', swapped), 'kubeferry/SHA256SUMS': base.sums({set: {'index.json': swapped}})}))

    const schema1 = Buffer.from(
      JSON.stringify({schemaVersion: 1, name: 'pause', tag: '3.10', architecture: 'amd64', fsLayers: [{blobSum: `sha256:${base.layerBlob.slice(13)}`}], history: [{v1Compatibility: '{"id":"x"}'}], signatures: []}, null, 3),
    )
    const schema1Name = `blobs/sha256/${sha256Digest(schema1).slice(7)}`
    const s1Index = Buffer.from(JSON.stringify({...index, manifests: index.manifests.map((m) => ({...m, mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws', digest: sha256Digest(schema1), size: schema1.length}))}))
    cases.schema1 = await pack(edit(base, {'index.json': file('index.json', s1Index), 'kubeferry/SHA256SUMS': base.sums({set: {'index.json': s1Index, [schema1Name]: schema1}})}, [file(schema1Name, schema1)]))

    // Cut inside the largest blob's data.
    const layerEntryOffset = baseBytes.indexOf(Buffer.from(base.layerBlob))
    cases.truncated = baseBytes.subarray(0, layerEntryOffset + 512 + Math.floor(layer.length / 2))

    const written: string[] = []
    await writeFile(join(outDir, 'base.tar'), baseBytes)
    written.push('base.tar')
    for (const c of SMALL_CASES) {
      await writeFile(join(outDir, `${c.name}.tar`), cases[c.name])
      written.push(`${c.name}.tar`)
    }
    await writeFile(
      join(outDir, 'README.md'),
      [
        '# Hostile bundles',
        '',
        'Generated by `node scripts/gen-hostile-fixtures.mjs` (source: test/hostile/generate.ts) — regenerate, never edit by hand.',
        `\`base.tar\` is a valid bundle of ${BASE_IMAGES.join(', ')} for ${BASE_PLATFORMS.join(', ')} (synthetic test images, made by the real`,
        'bundle builder); the install script written beside it is its own `kubeferry/install.sh` (the same bytes). Every other file is base.tar with one thing wrong:',
        '',
        ...SMALL_CASES.map((c) => `- \`${c.name}.tar\`: ${c.what}.`),
        '',
        'Made at test time into a temp dir (too big to commit): ' + LARGE_CASES.map((c) => `\`${c.name}\` (${c.what})`).join('; ') + '.',
        '',
        'test/hostile/hostile.test.ts checks that `verify`, `inspect`, `push`, `serve`, `load` and install.sh refuse each one',
        'with a clear message and leave the registry and the container runtime untouched.',
        '',
      ].join('\n'),
    )
    written.push('README.md')
    return written
  } finally {
    await rm(work, {recursive: true, force: true})
  }
}

/** The 100 MB JSON and tar bomb cases, made from base.tar into `dir`. */
export async function generateLarge(baseTar: string, dir: string): Promise<Record<string, string>> {
  await mkdir(dir, {recursive: true})
  const base = describeBase(await readEntries(await readFile(baseTar)))
  const out: Record<string, string> = {}

  // index.json: the real document followed by 100 MB of spaces (still valid JSON); SHA256SUMS updated to match.
  const real = base.get('index.json').data
  const huge = Buffer.alloc(100 * 1024 * 1024 + real.length, 0x20)
  real.copy(huge, 0)
  out['huge-json'] = join(dir, 'huge-json.tar')
  await writeFile(out['huge-json'], await pack(edit(base, {'index.json': file('index.json', huge), 'kubeferry/SHA256SUMS': base.sums({set: {'index.json': huge}})})))

  // Tar bomb: the valid bundle, then TAR_BOMB_ENTRIES empty files (headers only), streamed out.
  out['tar-bomb'] = join(dir, 'tar-bomb.tar')
  const stream = createWriteStream(out['tar-bomb'])
  const head = await pack(base.entries)
  const write = (b: Buffer): Promise<void> => new Promise((resolve, reject) => stream.write(b, (err) => (err ? reject(err) : resolve())))
  await write(head.subarray(0, head.length - 1024))
  const batch: Buffer[] = []
  for (let i = 0; i < TAR_BOMB_ENTRIES; i++) {
    batch.push(ustarHeader(`kubeferry/bomb/${String(i).padStart(6, '0')}`, 0))
    if (batch.length === 4096) await write(Buffer.concat(batch.splice(0)))
  }
  await write(Buffer.concat([...batch, Buffer.alloc(1024)]))
  await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())))
  return out
}

/** A ustar header block for a regular file (name < 100 bytes). */
function ustarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512)
  h.write(name, 0, 100, 'utf8')
  h.write('0000644\0', 100, 'ascii')
  h.write('0000000\0', 108, 'ascii')
  h.write('0000000\0', 116, 'ascii')
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii')
  h.write('00000000000\0', 136, 'ascii')
  h.write('        ', 148, 'ascii')
  h.write('0', 156, 'ascii')
  h.write('ustar\0', 257, 'ascii')
  h.write('00', 263, 'ascii')
  let sum = 0
  for (const b of h) sum += b
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii')
  return h
}
