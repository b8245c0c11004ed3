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
    script: 'bd9f0d724bcfe16c6d701fdac2d5f915b651d4d865beed2bf79dbd373299fce4',
    listing: '48eda1672af37453c2648db6e836cf28b5396ebcaa4af37f6731ff3a034135ef',
    entries: 'ca277e0b2cc09376f1365eafa2539a5551a76c3183c1ed77d7b1ff60c92b7106',
  },
  'hostile/base.tar': {
    script: '30bb0064fd2cfd520ffe1141215c31fb9777e8da6109bed6038952f5acfb0437',
    listing: 'b0d84b63cff8500a580fd2866aed684f91e2641247a0acbe2de05944a555b1da',
    entries: 'cd87707d2b7d9d5fdaf4de96f4d44be8b4dc8d7424c197cfc23957ab9b001577',
  },
  'demo-upstream.tar': {
    script: 'f7981ccb700e1d9261a3c7f4aa18b2d8b868022e2ed47a971630e020bed3cd5d',
    listing: 'b867814a5c3e36bdbd4fcf289c82c848bf667b1b625251d03af336cc83982036',
    entries: '62ade0052b301abc3b358816eac5b752d008d33b34dbf2a411e210be182db1a0',
  },
  'demo-upstream.tar+created': {
    script: '713d245e7aaa6e10e21beb6b3e74e6412805d49bee56ab1b0fc531c2d61fdf74',
    listing: '6ed4b67121ea4598b37cab10c34f2b4d7991590b7b0ef77d6b03e95f64e1faf3',
    entries: 'dcc8c2ae3099e2d822522f19ff07858cfdc1d5097e8a2a038834e3d5cc56524b',
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
    script: 'e7582d56c92374a772bea72d4bf739f0a4ca6f3c68954be280ed921bc881e496',
    listing: 'bcc0036b2c4fe1c1671060175baa916d111193230ecdb73ba6e7b187a9e38ef4',
    entries: '5d268e7c77a4b2014729ede5ee447e27494bfb9fe423b891cf5f3433df1ccefb',
  }],
  ['one platform', {platforms: ['linux/arm64'], absentPlatforms: [], salt: 'x'}, {
    script: '2d011b4a927e67416a9f6716a874379953f40aa5d3c2e9cf16bf5ea82ea3234b',
    listing: '3cc9e788111731aa4ee91be5f84548745bf11c33c8f5082bfa4b81b63c28bb15',
    entries: '6137d81249bb1c79bab3f19803c67537615356824a080a7264b316a736bbdc3b',
  }],
  ['three platforms', {platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], layerSize: 700}, {
    script: '4b5890f6387bdf77f483d88b7b048fd61b63b2f7e20fb261b2486b94ace6d074',
    listing: '6a13627bbbbb517074dda213e214204ca558c23594b53f8db48ef9f94227ce45',
    entries: '2169feb37575d2e971a0a57b55821a7fd8819e716f4a503a6504c8c261a5a6cc',
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
