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
    script: '87ac6d73f39435e3b9f5df57f11fdfdd7ae140ad5f3f197b2cff727efb81c3b5',
    listing: '827ec5a0b7855e13eb51a0ec8211c403286af4945c566e0b81ccdaa8d1b6df86',
    entries: '5525b871fc1be44a3e58d89ce216f19540fcaf37b18b0d93cca451972d8b6fb0',
  },
  'hostile/base.tar': {
    script: 'cecb7cc67e0296fc475ae3533a8bac08c6fd8823857cf123363e3a8e7e92fe4b',
    listing: '29c1fa85aa54455acd6c943c020b49711a6c97434acc47cd65d4254f68adcecb',
    entries: '7412425eb9b6aa172a127d08c4c25c321699d0d67dee74105bfb861e3ebb0cab',
  },
  'demo-upstream.tar': {
    script: 'b49d73f1c715b26cbd42b7855494408246a8803ad83cfc0a5bca52c54d1893ac',
    listing: '247c3ec2c9a39b552b3877f9f877891528a9c17110e0af3686abdc592d2ec742',
    entries: '7698654da3bd774fa8ef55b5d2d9d867807fc7663f524f1213acd71732fa188a',
  },
  'demo-upstream.tar+created': {
    script: '565bad5cb2a217b9afc3847e8e1b8d95a40fa3aa7c0e327b5a666697377855e4',
    listing: '10caeeff83c7b4495e90cc0c25f65811d97e4e3f6bfc5e71f38c64e439fe871c',
    entries: '8c935bb9d331337f11615ccc4b77e6f7a398815353667c8b2d31069ba2dbf1f6',
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
    script: 'c189dfe13dd153a26fc5702d8bcdc119b77d4be135738254466597e66a90b333',
    listing: '7a9af36ecebaa17b8a15c61b2649503084e2e8b9763e352ec0fea8b867506383',
    entries: 'dd3b9173122d4c6173a1a26ae805aa26a34a8ffcebbba7813a0a100b161e2c8e',
  }],
  ['one platform', {platforms: ['linux/arm64'], absentPlatforms: [], salt: 'x'}, {
    script: '1b4e24011733e547b6ea948d60cbf60212c6f31a6b75189778dbcc71ad62dd6f',
    listing: '9c517d55829226be7ca86e1fd9de50d9aa74e2d46e43817025b05b30f63d19da',
    entries: 'b1da1026b7cf411a20b5f6fe806ef74d6261ad9416a1c547e559adb137704cca',
  }],
  ['three platforms', {platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], layerSize: 700}, {
    script: '69c7c33dedce0a1495ee616a1baa79b58cb3614db16279b09f0ec0b51761bbcf',
    listing: 'b26923a73196f76fc6e411bd960409f391f23ffc3f675af75375aadc69f35d65',
    entries: '3ee7129abf68b3855cc69af480bc89b47e472ecb870f0daa77da43eed81da356',
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
