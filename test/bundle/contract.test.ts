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
    script: 'dbb35586a21f026b4988bb4575438a6605091c2f6726991cd62d3ae918e37717',
    listing: 'a97162c55937f532393ed47ba5920841d362169294f291707bd75a8393bcd15b',
    entries: '53ac9ca79179ed044cdb8c8e669f65f7297fdd2830f19c28dd05da6801774421',
  },
  'hostile/base.tar': {
    script: 'de2ebba019af87095912392f09aa14e006dc63a19c1f048997bb5e6b542b4fdc',
    listing: '6127e397ecc94dd060cf2862e4331645f53bae30970d5e44edb3a158dcba3602',
    entries: '4c5e31ae18f69ab79901dfaf2b7f77baa51ec2786fd44878ad707458627b1cfb',
  },
  'demo-upstream.tar': {
    script: 'a283b5a37c237b7ba6e76b99badedcf5d8e21f5d600b958cf1a98a5bedf5312c',
    listing: '27e81ff0305fe82dc8c59e3a1cffccfbe5a37709c0f2ced64dbfa71c19c051eb',
    entries: 'b8aeddbcb6f2850d4ea1ee1c408309e32d59a4697a7bad8566ade8501d4af1fd',
  },
  'demo-upstream.tar+created': {
    script: '161c374c04df2ae806660b54a3487b32719e6676b43c71f36c916743457029e2',
    listing: '967dadfa675ad92d7157ea9c7c8163717fe618fa09b31666f9e2af818fa45751',
    entries: '71f86bdbac77ff5b78cad37029dc643cb3df9c7333a7cd4ad5d1a54ca5a5c428',
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
    script: 'cfced47a5190f909572ba1068d6993aa24274734778d6c74d4c13101420ffcf3',
    listing: '9a8c8b7bdeb107170ac2c6d6e3d2c2267c059bf4a511596bc9286bc6e34c5724',
    entries: '7d929c7c7c83d275b248bcd18e20cedde9940ed36dbdc89427ecd4f0b81b407f',
  }],
  ['one platform', {platforms: ['linux/arm64'], absentPlatforms: [], salt: 'x'}, {
    script: '59d353dd806dc7325c215e85a96a3bf8aaf2efe2b9eb5ed2efa30c8fcfaeaf53',
    listing: 'e1e7576e015648a0fb5b13fc7297fc0f789799682c33b9e0f27c3f6208fda4ea',
    entries: '712cc36c0e8cc1a3f813d965151b700467755fc8ea97ac89ffda956fb77cb535',
  }],
  ['three platforms', {platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], layerSize: 700}, {
    script: '9aa10f96dc3206da5d617b38353de27a1af92ca3cf77f0c9f0336536efc8b220',
    listing: '5b691db96523d05d9cf33183d865185b2874c38db874546c150121b67dfdd772',
    entries: 'e8608b0afd959a90fdc0bfd08da722bb19d5352e0bada4fe6c148f76e4f3162e',
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
