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

// Taken with the code before contract.ts (commit 7908cf7: install-script.ts's TEMPLATE, writer.ts's bundleEntries);
// install.sh values retaken when its signature checks were added (issue 19: 15-signatures.sh and its hooks).
const GOLDEN: Record<string, {script: string; listing: string; entries: string}> = {
  'good.tar': {
    script: '9c7c39cc0568ff889ed3400eb48a836828182d380f60a401701ccc200f6d411e',
    listing: '5c89c11202c46e7e11221d689f4d88c77e148a55d63e645322f87bdcc71cd1d3',
    entries: 'e3891778a4b7346dd71e5fd0546d04ce1e6b0dd9c31f17f5d7c736efd3ac713c',
  },
  'hostile/base.tar': {
    script: 'ddc20291c13e38138fa93aebd00df78ebde3c2cf0e6e809e32f479573bab3f58',
    listing: 'aa865031cc390c6f3f08a1a3cdd7dca7f357c68eaff1c5f7143ff4a936055726',
    entries: '59f8240fa105ef7d78b809fb7e5ae72478ab12b6654e4c52a8285ff688759ce8',
  },
  'demo-upstream.tar': {
    script: 'ff5648489b70ca51216ec263bc8b58ce0de1dc552047b26b833378ad0c3694af',
    listing: '48c67241af2941b86da3e8a52398c7f798dc7ba4a9e3da13899ebe657d43e307',
    entries: '3a64af45c9da64c659310dbda52e51f0e001554b277917015ba2b5cc15ac42e4',
  },
  'demo-upstream.tar+created': {
    script: '31da3e7b65a121029b0624463f9604d5e8e4c682c722c11fae15cd090b952a8f',
    listing: 'c0bd2f08136a8c0fa9cd02c4672679cbe3fd82a36fb9668e2904233598ed3004',
    entries: '5e97564c669d1fe1628fdde4cebd831a25b610f30660f812ca8df91c74b7aebf',
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
    script: '244b6799e21452194bf7525bd64ff422b6b49fd9070448b4c818b41e41343c32',
    listing: '239fe22900dd84ed151f53bbe632155c32a046661b2ce79d7d25a32ed0e28fc0',
    entries: '8b22ec17772de3ffeac26fd81c71e847cf4b0eb47603eeb79720c737a0e4e1c5',
  }],
  ['one platform', {platforms: ['linux/arm64'], absentPlatforms: [], salt: 'x'}, {
    script: '5ffd9183265b7ed68ee1b4680773f2c1d4c457f3fca015c825aa5a69cdfcc4f1',
    listing: '3c78e3a458b73fdfc45fdc04bccc776a81d2944791ebd59e66ecb932e147d789',
    entries: '65579e5f74cfc6a6e4457df2e7d41a55ea0dfa4449ef6b4577c35de3ae8c94bb',
  }],
  ['three platforms', {platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], layerSize: 700}, {
    script: 'e453fa436d7827615b25efbe80b494846dab9b062eafd8bb960b3d96dd514ab9',
    listing: 'dbad86863c3ff7008832345d53aa33596a89cacb2d7e8fbd667a4f624b9dd151',
    entries: 'c319d30355f5f32d9c177b8235654aaae274947b4fdc4a76265b7b8f9c511c70',
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
