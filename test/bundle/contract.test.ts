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
    script: 'dd8cf57532d651a269f9579edac4b1e95b76d0782ddeb89a57ff76f2ae525ef4',
    listing: 'dae24b76fccf17613df36af511b76690605bb1f05802db9ca6d1445bef926e55',
    entries: '2b6de9d90c4a5d70ece955e2512e184bf2c1f345c7ddcf79af1163ab8383c334',
  },
  'hostile/base.tar': {
    script: 'b7db202395d933e1a8235bf38e1e96d692e532ba179e01ad53377525ee433b7f',
    listing: '6f9b40b36b57b7a4665d9522ae6727771cbff552db53e735669d1dadc1611e90',
    entries: '5b133ed0eb4d8170db7c0712687a56cda14fe74984dda63bb523a12cf5d8b38a',
  },
  'demo-upstream.tar': {
    script: '098dc77f415cee0a548a5d946e97cba2f926cf0290fdc6a4153525099e320969',
    listing: '7c4f052e24e242607adb4d46cfeea88b1814cf6446c6b536ea3105d3da487fc9',
    entries: 'e61ccc49c4a6baefa00a9be484bfec0ca1be479dd781404ebd38bfb442c0e84a',
  },
  'demo-upstream.tar+created': {
    script: '4dc07e183e2c54f112e834949422ec97c6c406bf84ba7d78bdd09e22fdbba80a',
    listing: '638cc5f655d5fc086661fa05c37e68f7b91eed6c27e7bb7637af130d30e11ec6',
    entries: '9a976c7f278203cb4cfe0458cd405ba56d6f0aa1c6678fa03166e7434006ec6b',
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
    script: '870989623b1d2bfd81731646958f6c7b787db53d9f4f752283619f19ff1269a1',
    listing: '42fec7f8ad328390a1e5e6461088bc7c9b7d8b1c036b1a83cd9188218d141bcd',
    entries: '7fe0a7643689226642ebc23f71f27269f5db3868f818bb4ffb8307a3c8bf334d',
  }],
  ['one platform', {platforms: ['linux/arm64'], absentPlatforms: [], salt: 'x'}, {
    script: 'aed11f473adcac479635a1492276e2a9f7b003bdae8c813026f02695eb9a7357',
    listing: '96b580fbf79256c3992336b2e93aa433d172cfeda83659f75187d4c173d17a00',
    entries: '83eb9bbea810ebb2009e566925189c52e6f9766a66a09bfa1f6561fa70aa95e7',
  }],
  ['three platforms', {platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], layerSize: 700}, {
    script: '9667e4f866f5f4890dd347db6bf439422ca1acfa01c5fc86d9cd4ab712fa3328',
    listing: 'ba6a5f46f96196015b715bf2397e2e3f30803a8e6f1a116770056e77056c7f47',
    entries: '1b405d13e87c0f7dc68ce4730298f2b62a1109622b5350ce7b8240e2591adbd5',
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
