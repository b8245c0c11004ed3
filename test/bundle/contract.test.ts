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
    script: '8dee318248ea728129db61959906b941c5ea7f9de703eb42ff0b5fb2f27127e7',
    listing: 'b909702e6b995852deffd5c8f58525d1ac7c898bc7b1db278b4bbff35c57c1f8',
    entries: '897e235be2c4b7d9f2b41a32024d7829e375a8b58a57e6d9eb37957d21c083d9',
  },
  'hostile/base.tar': {
    script: '829ff713f1abfe81aa05426058e3022952d23ec976762e88de5d8ea06ec51bfb',
    listing: '85779de3b260118889e4c67e6e925d5644a5b61f94ff7e285bc25cd79c03813a',
    entries: 'ebbce2fb5ce4dde98c0b41c4d1a46f9ae02dceeb970af33b8d57d6697af43c9f',
  },
  'demo-upstream.tar': {
    script: '400dd8638e37b6a48729f94a53094a8dcadee1659753ae3d4600d56cb149137b',
    listing: 'da5732ea851ed3b8015fc90cd15810bbf996e2ae7c449c86a80505abfe23b230',
    entries: 'e3276d723a658cc436e27570bf54c3f65071a1f4acbacd7f575425a658aa36ee',
  },
  'demo-upstream.tar+created': {
    script: 'f1e3709fc697ba38197a621219a63afdcea0576930f6c6bf66350bfeddc871c2',
    listing: '533865458e5e271e214fc3d9c239b2b540d340a7a2c9fc729f79d70f64fca744',
    entries: '874ab56dea749d70337ec3bd72e6f86b24621409d0099a7d00af331564afe518',
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
    script: '6c762974ea11032849f403bc37bb370013c2b801b97c4dc0a152bc7d3e9190e0',
    listing: 'e9f45fafeeac7c3a2f793b4c4ac931980608313952e69eb8f7821013cc9b47d4',
    entries: '897e14d59e806cf988490b47a6915e2d9a3901741d4e0c4a966eb5cc7fff7536',
  }],
  ['one platform', {platforms: ['linux/arm64'], absentPlatforms: [], salt: 'x'}, {
    script: '774039d3bb5453e663a4af0b4d2cc2ae914a2b34519b83774d41a647216bfebf',
    listing: '38b4486180a8c86371feeb76bffb732eeceef17ee9a34965c6b4e3264980fae6',
    entries: 'fbadbc7e91161042747910ce8319eb9316575787a09f57c66f332c11fde72a49',
  }],
  ['three platforms', {platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], layerSize: 700}, {
    script: 'd4cbb785b00f80ade6619b1e17e53b6de3c3cd4a75d1ebe58ab437a048dbdacf',
    listing: 'd22dde9d5e6e7be6669dd2f042b35cfc933ff4cea54926106d959358435ea300',
    entries: 'df7646d3bb615e437f64425a8fc2e69f59f140b4a2962c5bf0772e6672c3a330',
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
