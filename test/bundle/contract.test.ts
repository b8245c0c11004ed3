/**
 * The bundle's contract (src/bundle/contract.ts) and the install.sh it renders, held byte for byte:
 *  - the sha256 of install.sh, of its entry list and of every entry's name/size/mode/bytes, rendered from fixed
 *    metadata (the committed fixtures' bundle.json), equal the values taken with the code before contract.ts;
 *  - the same for the bundles the load tests make (one, two and three platforms), values checked equal to the renderer
 *    before contract.ts while both existed (legacy-render.ts, removed once the contract landed);
 *  - install.sh (src/bundle/install/*.sh, concatenated) is shellcheck clean, and the build ships its parts.
 * No peers needed.
 */
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import test from 'ava'
import {blobsOf, bundleEntries, mtimeOf} from '../../src/bundle/contract.js'
import {INSTALL_PARTS, installScriptTemplate} from '../../src/bundle/install-template.js'
import {expectedEntries, renderInstallScript} from '../../src/bundle/install-script.js'
import type {BundleMetadata} from '../../src/bundle/layout.js'
import {BundleReader} from '../../src/bundle/reader.js'
import {makeBundle} from '../load/make-bundle.js'

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const fixture = (name: string): string => join(projectRoot, 'fixtures', 'bundles', name)
const sha = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

async function fixtureMeta(name: string): Promise<BundleMetadata> {
  const reader = await BundleReader.open(fixture(name))
  return reader.metadata()
}

/** The same metadata as if written with SOURCE_DATE_EPOCH=1700000000 (`created` right after `tool`, as buildMetadata puts it). */
function withCreated(meta: BundleMetadata): BundleMetadata {
  const {schemaVersion, tool, ...rest} = meta
  return {schemaVersion, tool, created: new Date(1_700_000_000 * 1000).toISOString(), ...rest}
}

/** sha256 of the contract's entries: name, size, mode and the sha256 of the bytes of every non-blob entry. */
function entriesSha(meta: BundleMetadata): string {
  const entries = bundleEntries(meta, blobsOf(meta), mtimeOf(meta))
  return sha(JSON.stringify(entries.map((e) => [e.path, e.size, e.mode, e.bytes ? sha(e.bytes) : null])))
}

// Taken with the code before contract.ts (commit 7908cf7: install-script.ts's TEMPLATE, writer.ts's bundleEntries).
const GOLDEN: Record<string, {script: string; listing: string; entries: string}> = {
  'good.tar': {
    script: 'e32cf20b2ffb6b54282d0def8e365abd3cde0d2b774c8d00d1c247a329ae713d',
    listing: 'ccf08fa89375985fff789a1d8c4d5566370eaffcd401994639f473a522bc2c08',
    entries: '199bf57142ec0818b0ac02aa0964f04105df41315329ddf4ab5581d732ca13d4',
  },
  'hostile/base.tar': {
    script: '80e6148d2ea5a12c997dc8b3a72360dc48ee9f07435bfb8a42198baf6431f81a',
    listing: 'bdd9d31608d507fb8b12ea1f764abb5e5772fad181f70644cfb496aca306382c',
    entries: '5f2283902f905f133ae8a645b5ea2a795b00e3e894ebd08aedd82417b6a73ebc',
  },
  'demo-upstream.tar': {
    script: '5d0cdce6c799a3ed978572034288c457b94ae6c602c87878df7a91ccf6ef4b15',
    listing: 'da83327aa8f1f3834f5e96c9d09cb20eb73a3043dffaed0926d841fdbf87742f',
    entries: 'f77ae2f32e61ee6993194532a3639e9702eb4063d85b2000d0c83232cb094671',
  },
  'demo-upstream.tar+created': {
    script: 'f3814b760b3b0af04decbacdf2cf518e6c5a664d5a7d8a3d8b40ca0b4a52a1de',
    listing: '1fa06b6c79c643f1f70fa2ced7955ff4ae35177511540d085e938ad9020e33ee',
    entries: '2837d3df139b587c3220802724d42a962d056f1eaf66c986a8923cb912bca2c0',
  },
}

for (const [name, golden] of Object.entries(GOLDEN)) {
  test(`install.sh, its entry list and the bundle's entries rendered for ${name} are byte-identical to before`, async (t) => {
    const [file, variant] = name.split('+')
    const meta = variant === 'created' ? withCreated(await fixtureMeta(file)) : await fixtureMeta(file)
    const script = renderInstallScript(meta)
    t.is(sha(script), golden.script, 'install.sh')
    t.is(sha(JSON.stringify(expectedEntries(meta, Buffer.byteLength(script)))), golden.listing, 'install.sh entry list')
    t.is(entriesSha(meta), golden.entries, 'bundle entries')
  })
}

// The load tests' bundles (test/load/make-bundle.ts is deterministic), taken when the renderer before contract.ts and
// the contract were compared on them.
const MADE_GOLDEN: Array<[string, Parameters<typeof makeBundle>[1], {script: string; listing: string; entries: string}]> = [
  ['default', undefined, {
    script: 'f0f2e467c108bb539073dbf457758cc148f1ff3f29815355dab2e1c79f3792b5',
    listing: 'b4b15785cc0fe88472cbc56777481ff9ff32af22ef1ef398ce00bc02e10ab23d',
    entries: '92d3a09de369efef78ea2b595d8c5c1c82d4acc55dc0b5fae0becf58f3915e32',
  }],
  ['one platform', {platforms: ['linux/arm64'], absentPlatforms: [], salt: 'x'}, {
    script: 'c5b6bf4862a97737640d52350eb989592b90d98050e89005e300334f1e088b19',
    listing: '2acae7311808ec112327b372b84160b1346dd80d54e822055e25a818b437fb7f',
    entries: '94be6495c5132369282e6a157e38437d126a86ddd16f58ab4a795c0789be11fa',
  }],
  ['three platforms', {platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], layerSize: 700}, {
    script: '8fccce9118d8ad9e73b064d05dd3eb9f0b006edcfb80fae1a4b75a88510c2a1f',
    listing: 'f6e80a914f756233aee3564c4c812f73bd081023718f7043587247f3880d32e0',
    entries: 'be85dc02c31034901edf54178b3baa4de47b2313eadc84fc76a7c2e68fdd33ec',
  }],
]

test('install.sh, its entry list and the entries of the load tests\' bundles are byte-identical to before', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'kf-contract-'))
  try {
    for (const [name, options, golden] of MADE_GOLDEN) {
      const meta = await makeBundle(join(work, `${name.replaceAll(' ', '-')}.tar`), options)
      const script = renderInstallScript(meta)
      t.is(sha(script), golden.script, `${name}: install.sh`)
      t.is(sha(JSON.stringify(expectedEntries(meta, Buffer.byteLength(script)))), golden.listing, `${name}: entry list`)
      t.is(entriesSha(meta), golden.entries, `${name}: entries`)
    }
  } finally {
    await rm(work, {recursive: true, force: true})
  }
})

test('the install.sh template is shell, shellcheck clean as a whole, made of its parts in order, and the build ships them', async (t) => {
  const parts = join(projectRoot, 'src', 'bundle', 'install')
  t.deepEqual([...INSTALL_PARTS], (await readdir(parts)).filter((n) => n.endsWith('.sh')).sort(), 'every part is listed, in name order')
  const source = (await Promise.all(INSTALL_PARTS.map((p) => readFile(join(parts, p), 'utf8')))).join('')
  const whole = join(await mkdtemp(join(tmpdir(), 'kf-install-sh-')), 'install.sh')
  await writeFile(whole, source)
  const r = await new Promise<{code: number; out: string}>((done) => {
    execFile('shellcheck', ['-s', 'sh', whole], (error, stdout, stderr) => done({code: error ? Number(error.code ?? 1) : 0, out: `${stdout}${stderr}`}))
  })
  await rm(dirname(whole), {recursive: true, force: true})
  t.is(r.code, 0, r.out)
  t.is(installScriptTemplate(), source, 'dist/src/bundle/install/ holds src/bundle/install/')
  for (const placeholder of ['@@VERSION@@', '@@COUNT@@', '@@PLATFORMS@@', '@@PLAN@@']) t.true(installScriptTemplate().includes(placeholder), placeholder)
})
