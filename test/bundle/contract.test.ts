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
    script: '4454e88a22bab419251ffbf4b9205cc267d73ceefd3cc7b5dbd4e6c1a01a8323',
    listing: 'f481e6381e01b116bf466053da2b0b170e962f6c3a6b0a92d498c5abcd8d4356',
    entries: '405fb028fd4f852e20245fb475e3f29582a0bf010393b3027d8ae70656a3747d',
  },
  'hostile/base.tar': {
    script: 'f8a45f9ab4e51c3e19dd6e8bb2e5b709818d8c17c66444c83f969967f6c12602',
    listing: '1332788406bdf5eec7d8c2c5378aafbcd7a030a90f99e1f412bb1269620243da',
    entries: 'eb91a401f15a32ef43167f0eb48e6323283f1201ed01ed73863555c54739716d',
  },
  'demo-upstream.tar': {
    script: '099177b938d6894538f4eaa808b4cf60ef9e38aa8f163edf7c231556ddd7c5e1',
    listing: 'c6009f490c2d78a84e5b006d4818f20d0f9dcaaddbd3eb06b4073bc9b6ad006e',
    entries: 'c2856d8d4388fc1d86df1a0ee0e2c8bf5743e029247e54f221ae8327d50529d2',
  },
  'demo-upstream.tar+created': {
    script: '1eb5e1c1c4a3b53cb06e54049a3b934b0967c1ec5b87fc3b96f01df2fe5eac01',
    listing: '3de8ea011fe93381165d94c053a9b21ade0c2abd227fc37fc558a1418c8ed4aa',
    entries: 'fdc644a554f7a8fc78a662bf086dff0006e1b853cb803f15ecc8d12c7002d710',
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
    script: '0d4e9b8ba1cff7c3d93f56e1d18f1ed92f6fe194e83f712d8d7371e1f942e207',
    listing: '7df0ebd8bb820889335a5ce670832d30163843073829095b10c4a046e83d13b8',
    entries: 'c84f7634f1702b0e2ff22534b4dda021b6619f5fc2d6a0fc777a3eb4d230e248',
  }],
  ['one platform', {platforms: ['linux/arm64'], absentPlatforms: [], salt: 'x'}, {
    script: '26aac61e25f1fda472e73075a401964c4d16791a07aa4af53de28b372df055f9',
    listing: 'd53ff763e27e40117aa021830c33b167d4c8071efafbc8990f1de6cc161b5d46',
    entries: '88552f3ceeef8cfe06d4c58bfddc5331ca0fa45ba8c87f3b698f48d41e683f10',
  }],
  ['three platforms', {platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], layerSize: 700}, {
    script: '53d3066a96a8ff5af561bf18d901e28715c98147220e25a6b34032c22a9fec77',
    listing: 'f926775d46bf96676030331b3aab90afd5d18af796b12a07ac0389d5be4e5199',
    entries: '9261ace1da69e7c9f9cb7ac4507b23a071235d1e695e642273970f0a27591a23',
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
