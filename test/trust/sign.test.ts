/**
 * Bundle signatures without peers: `sign` and `create`-style signing with keys from `openssl genpkey` (P-256,
 * Ed25519, encrypted), the envelope's shape (DSSE, in-toto Statement, keyid = sha256 of the DER SPKI), a second
 * signature added without touching the bundle, a bundle in parts, `verify`'s refusals and exit codes, and the
 * README's plain-openssl recipe run as written against good and bad signatures.
 */
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {runCli, projectRoot} from '../helpers/cli.js'
import {makeBundle} from '../load/make-bundle.js'
import {splitBundle} from '../bundle/parts-helpers.js'
import {genKey, opensslKeyId, type TestKey} from './keys.js'

let work: string
let bundle: string
let ed: TestKey
let ec: TestKey
let other: TestKey
const env = (dir: string): NodeJS.ProcessEnv => ({KUBEFERRY_TRUSTED_KEYS: join(dir, 'no-policy')})

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-trust-sign-'))
  bundle = join(work, 'k8s.tar')
  await makeBundle(bundle, {salt: 'trust-sign', checksumFile: true})
  ;[ed, ec, other] = await Promise.all([genKey(work, 'ed', 'ed25519'), genKey(work, 'ec', 'p256'), genKey(work, 'other', 'ed25519')])
})
test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** A copy of the test bundle (and its .sha256 and install.sh) in its own directory. */
async function copyBundle(name: string): Promise<string> {
  const dir = await mkdtemp(join(work, `${name}-`))
  const to = join(dir, 'k8s.tar')
  await copyFile(bundle, to)
  await copyFile(bundle.replace(/\.tar$/, '.install.sh'), to.replace(/\.tar$/, '.install.sh'))
  await writeFile(`${to}.sha256`, (await readFile(`${bundle}.sha256`, 'utf8')).replace(/\S+$/m, 'k8s.tar'))
  return to
}

test.serial('sign: P-256 then Ed25519 into one DSSE envelope; in-toto statement names the bundle; the bundle is not rewritten', async (t) => {
  const b = await copyBundle('two')
  const before = await stat(b)
  const bytes = await readFile(b)
  const first = await runCli(['sign', b, '--key', ec.key, '--json'], {env: env(work)})
  t.is(first.code, 0, first.stderr)
  const r1 = JSON.parse(first.stdout) as {keyid: string; signatures: number; algorithm: string; statement: {sha256: string; size: number}}
  t.is(r1.keyid, await opensslKeyId(ec.pub), 'keyid = sha256 of the DER SPKI, as openssl computes it')
  t.is(r1.algorithm, 'ecdsa-p256')
  t.is(r1.statement.sha256, sha(bytes))
  t.is(r1.statement.size, bytes.length)
  const second = await runCli(['sign', b, '--key', ed.key], {env: env(work)})
  t.is(second.code, 0, second.stderr)
  t.regex(second.stdout, /2 signatures/)
  const again = await runCli(['sign', b, '--key', ed.key, '--json'], {env: env(work)})
  t.true((JSON.parse(again.stdout) as {alreadySigned: boolean}).alreadySigned, 'the same key twice adds nothing')
  const envelope = JSON.parse(await readFile(`${b}.sig.json`, 'utf8')) as {payloadType: string; payload: string; signatures: Array<{keyid: string; sig: string}>}
  t.is(envelope.payloadType, 'application/vnd.in-toto+json')
  t.deepEqual(envelope.signatures.map((s) => s.keyid), [await opensslKeyId(ec.pub), await opensslKeyId(ed.pub)])
  const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as {_type: string; subject: Array<{name: string; digest: {sha256: string}}>; predicateType: string; predicate: {size: number; bundleJson: {sha256: string}}}
  t.is(statement._type, 'https://in-toto.io/Statement/v1')
  t.deepEqual(statement.subject, [{name: 'k8s.tar', digest: {sha256: sha(bytes)}}])
  t.is(statement.predicateType, 'https://kubeferry.dev/bundle/v1')
  t.is(statement.predicate.size, bytes.length)
  t.regex(statement.predicate.bundleJson.sha256, /^[0-9a-f]{64}$/)
  const after = await stat(b)
  t.is(after.mtimeMs, before.mtimeMs, 'the bundle was not written to')
  t.is(sha(await readFile(b)), sha(bytes))
  const ok = await runCli(['verify', b, '--key', ed.pub, '--key', ec.pub, '--require-signatures', '2'], {env: env(work)})
  t.is(ok.code, 0, ok.stderr)
  t.regex(ok.stdout, /2 of 2 required/)
})

test.serial('encrypted keys: passphrase from stdin or a named env var; none or a wrong one refused without a trace of it', async (t) => {
  const pass = 'Kf-passphrase-7c1e9'
  const enc = await genKey(work, 'enc', 'p256', pass)
  const b = await copyBundle('enc')
  const none = await runCli(['sign', b, '--key', enc.key], {env: env(work)})
  t.is(none.code, 1)
  t.regex(none.stderr, /is encrypted and no passphrase was given/)
  const wrong = await runCli(['sign', b, '--key', enc.key, '--passphrase-stdin'], {env: env(work), stdin: 'not-it\n'})
  t.is(wrong.code, 1)
  t.regex(wrong.stderr, /cannot decrypt key .*enc\.key: wrong passphrase/)
  const unset = await runCli(['sign', b, '--key', enc.key, '--passphrase-env', 'KF_TEST_UNSET_PASS'], {env: env(work)})
  t.is(unset.code, 2)
  const viaStdin = await runCli(['sign', b, '--key', enc.key, '--passphrase-stdin'], {env: env(work), stdin: `${pass}\n`})
  t.is(viaStdin.code, 0, viaStdin.stderr)
  await rm(`${b}.sig.json`)
  const viaEnv = await runCli(['sign', b, '--key', enc.key, '--passphrase-env', 'KF_PASS', '--json', '--debug'], {env: {...env(work), KF_PASS: pass}})
  t.is(viaEnv.code, 0, viaEnv.stderr)
  for (const r of [none, wrong, unset, viaStdin, viaEnv]) t.false((r.stdout + r.stderr).includes(pass), 'no passphrase in any output')
})

test.serial('refusals: unsigned, untrusted key, one of two, changed bundle, private key given to verify, impossible N', async (t) => {
  const b = await copyBundle('refuse')
  const unsigned = await runCli(['verify', b, '--key', ed.pub], {env: env(work)})
  t.is(unsigned.code, 1)
  t.regex(unsigned.stderr, /k8s\.tar is not signed \(no k8s\.tar\.sig\.json beside it\)/)
  t.regex(unsigned.stderr, /hint: get k8s\.tar\.sig\.json from whoever built the bundle/)
  await runCli(['sign', b, '--key', ed.key], {env: env(work)})
  const untrusted = await runCli(['verify', b, '--key', other.pub], {env: env(work)})
  t.is(untrusted.code, 1)
  t.regex(untrusted.stderr, /0 valid signatures from trusted keys where 1 signature from --key .*other\.pub is required.*not a trusted key/)
  const oneOfTwo = await runCli(['verify', b, '--key', ed.pub, '--key', ec.pub, '--require-signatures', '2'], {env: env(work)})
  t.is(oneOfTwo.code, 1)
  t.regex(oneOfTwo.stderr, /1 valid signature from trusted keys where 2 signatures/)
  const impossible = await runCli(['verify', b, '--key', ed.pub, '--require-signatures', '2'], {env: env(work)})
  t.is(impossible.code, 2)
  const priv = await runCli(['verify', b, '--key', ed.key], {env: env(work)})
  t.is(priv.code, 1)
  t.regex(priv.stderr, /is a private key; verification takes the signer's public key/)
  t.false(priv.stderr.includes((await readFile(ed.key, 'utf8')).split('\n')[1]), 'no key bytes in the message')
  // the same bytes, a flipped byte at the end (zero padding of the tar): checksum and signature both refuse
  const flipped = await copyBundle('flip')
  await copyFile(`${b}.sig.json`, `${flipped}.sig.json`)
  const bytes = await readFile(flipped)
  bytes[bytes.length - 1] ^= 1
  await writeFile(flipped, bytes)
  await writeFile(`${flipped}.sha256`, `${sha(bytes)}  k8s.tar\n`)
  const changed = await runCli(['verify', flipped, '--key', ed.pub], {env: env(work)})
  t.is(changed.code, 1)
  t.regex(changed.stderr, /is not the bundle that was signed: its sha256 is [0-9a-f]{64}, the statement signed by .*ed\.pub names/)
})

test.serial('a bundle in parts: signed and verified across its parts (never joined), a corrupted part named', async (t) => {
  const split = await splitBundle(bundle, 40 * 1024)
  try {
    t.true(split.parts.length > 1)
    const signed = await runCli(['sign', split.parts[0], '--key', ed.key, '--json'], {env: env(work)})
    t.is(signed.code, 0, signed.stderr)
    const r = JSON.parse(signed.stdout) as {signatureFile: string; statement: {sha256: string}}
    t.is(r.signatureFile, `${split.bundlePath}.sig.json`)
    t.is(r.statement.sha256, sha(await readFile(bundle)), 'the whole bundle\'s sha256')
    const ok = await runCli(['verify', split.parts[0], '--key', ed.pub], {env: env(work)})
    t.is(ok.code, 0, ok.stderr)
    const part = await readFile(split.parts[1])
    part[10] ^= 1
    await writeFile(split.parts[1], part)
    const bad = await runCli(['verify', split.parts[0], '--key', ed.pub, '--quick'], {env: env(work)})
    t.is(bad.code, 1)
    t.regex(bad.stderr, /part .*\.002 does not match its sha256/)
  } finally {
    await rm(split.dir, {recursive: true, force: true})
  }
})

/** The README's plain-openssl recipe, as written, with its first line (B=… KEY=…) set to this bundle and key. */
async function readmeRecipe(kind: 'ed25519' | 'p256'): Promise<string> {
  const readme = await readFile(join(projectRoot, 'README.md'), 'utf8')
  const block = /\*\*Checking a signature with plain openssl\*\*[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1]
  if (!block) throw new Error('README: no plain-openssl block')
  const lines = block.split('\n')
  if (!/^B=\S+ KEY=\S+/.test(lines[0])) throw new Error('README: the recipe does not start with B=… KEY=…')
  return ['B=k8s.tar KEY=signer.pub', ...lines.slice(1).filter((l) => !l.includes(kind === 'ed25519' ? 'ECDSA P-256 key' : 'Ed25519 key'))].join('\n')
}

function sh(script: string, cwd: string): Promise<{code: number; out: string}> {
  return new Promise((done) => {
    execFile('dash', ['-e', '-c', script], {cwd}, (error, stdout, stderr) => done({code: error ? Number(error.code ?? 1) : 0, out: stdout + stderr}))
  })
}

for (const key of ['ed25519', 'p256'] as const) {
  test.serial(`the README's plain-openssl check (${key}) accepts a good signature and refuses a bad one`, async (t) => {
    const b = await copyBundle(`readme-${key}`)
    const dir = join(b, '..')
    const signer = key === 'ed25519' ? ed : ec
    await copyFile(signer.pub, join(dir, 'signer.pub'))
    t.is((await runCli(['sign', b, '--key', signer.key], {env: env(work)})).code, 0)
    const recipe = await readmeRecipe(key)
    const good = await sh(recipe, dir)
    t.is(good.code, 0, good.out)
    t.regex(good.out, key === 'ed25519' ? /Signature Verified Successfully/ : /Verified OK/)
    t.regex(good.out, /statement names k8s\.tar/)
    // a flipped byte in the signature
    const text = await readFile(`${b}.sig.json`, 'utf8')
    const sig = /"sig":"([^"]+)"/.exec(text)![1]
    const raw = Buffer.from(sig, 'base64')
    raw[raw.length - 3] ^= 1
    await writeFile(`${b}.sig.json`, text.replace(sig, raw.toString('base64')))
    const bad = await sh(recipe, dir)
    t.not(bad.code, 0, bad.out)
    t.notRegex(bad.out, /statement names/)
    // a good signature by another key than the one trusted
    await writeFile(`${b}.sig.json`, text)
    await copyFile(other.pub, join(dir, 'signer.pub'))
    const untrusted = await sh(recipe, dir)
    t.not(untrusted.code, 0, untrusted.out)
    // the right key and signature, another bundle
    await copyFile(signer.pub, join(dir, 'signer.pub'))
    const bytes = await readFile(b)
    bytes[bytes.length - 1] ^= 1
    await writeFile(b, bytes)
    const swapped = await sh(recipe, dir)
    t.not(swapped.code, 0, swapped.out)
    t.notRegex(swapped.out, /statement names/)
  })
}

test.serial('inspect: names the signatures beside the bundle (unchecked without a key, who signed with one)', async (t) => {
  const b = await copyBundle('inspect')
  t.is((await runCli(['sign', b, '--key', ed.key], {env: env(work)})).code, 0)
  const plain = await runCli(['inspect', b, '--json'], {env: env(work)})
  t.is(plain.code, 0, plain.stderr)
  t.deepEqual((JSON.parse(plain.stdout) as {signatures: unknown}).signatures, {signatureFile: `${b}.sig.json`, keyids: [await opensslKeyId(ed.pub)], checked: false})
  const checked = await runCli(['inspect', b, '--key', ed.pub], {env: env(work)})
  t.is(checked.code, 0, checked.stderr)
  t.regex(checked.stdout, /signed by .*ed\.pub \(ed25519, keyid [0-9a-f]{16}…\); 1 of 1 required/)
  const refused = await runCli(['inspect', b, '--key', other.pub], {env: env(work)})
  t.is(refused.code, 1)
  t.regex(refused.stderr, /has 0 valid signatures/)
})

test.serial('install.sh: with a key required and no openssl on the node it stops and says so; without a key it runs as before', async (t) => {
  if (!['/usr/bin/busybox', '/bin/busybox'].some((p) => existsSync(p))) return t.pass('busybox is not installed')
  const busybox = existsSync('/usr/bin/busybox') ? '/usr/bin/busybox' : '/bin/busybox'
  const b = await copyBundle('no-openssl')
  t.is((await runCli(['sign', b, '--key', ed.key], {env: env(work)})).code, 0)
  // A PATH of busybox tools only: everything install.sh needs, but no openssl.
  const tools = join(work, 'no-openssl-bin')
  await mkdir(tools, {recursive: true})
  for (const tool of ['awk', 'sed', 'tr', 'base64', 'sha256sum', 'wc', 'head', 'tail', 'tar', 'cat', 'cp', 'mktemp', 'rm', 'df', 'dirname', 'basename', 'uname', 'mkdir']) {
    await symlink(busybox, join(tools, tool)).catch(() => undefined)
  }
  const script = b.replace(/\.tar$/, '.install.sh')
  const run = (args: string[], policy?: string): Promise<{code: number; out: string}> =>
    new Promise((done) => {
      execFile(busybox, ['sh', script, b, '--verify-only', ...args], {env: {PATH: tools, KUBEFERRY_TRUSTED_KEYS: policy ?? join(work, 'no-policy')}}, (error, stdout, stderr) =>
        done({code: error ? Number(error.code ?? 1) : 0, out: stdout + stderr}),
      )
    })
  const keyed = await run(['--key', ed.pub])
  t.is(keyed.code, 4, keyed.out)
  t.regex(keyed.out, /must carry a signature by --key .*ed\.pub, and this node has no openssl to check it: nothing was imported\. Install openssl/)
  const policy = join(work, 'no-openssl-policy')
  await mkdir(policy, {recursive: true})
  await copyFile(ed.pub, join(policy, 'signer.pem'))
  const byPolicy = await run([], policy)
  t.is(byPolicy.code, 4, byPolicy.out)
  t.regex(byPolicy.out, /by the node policy .*no-openssl-policy, and this node has no openssl/)
  const plain = await run([])
  t.is(plain.code, 0, plain.out)
  t.regex(plain.out, /bundle verified; nothing imported/)
})

test.serial('a second signer with another bundle is refused: the signature file is left as it was', async (t) => {
  const b = await copyBundle('second-signer')
  t.is((await runCli(['sign', b, '--key', ed.key], {env: env(work)})).code, 0)
  const before = await readFile(`${b}.sig.json`, 'utf8')
  const bytes = await readFile(b)
  bytes[bytes.length - 1] ^= 1
  await writeFile(b, bytes)
  await writeFile(`${b}.sha256`, `${sha(bytes)}  k8s.tar\n`)
  const r = await runCli(['sign', b, '--key', ec.key], {env: env(work)})
  t.is(r.code, 1)
  t.regex(r.stderr, /k8s\.tar\.sig\.json signs another bundle \(sha256 [0-9a-f]{64}, \d+ bytes\) than .*k8s\.tar \(sha256 [0-9a-f]{64}, \d+ bytes\); nothing was signed/)
  t.is(await readFile(`${b}.sig.json`, 'utf8'), before)
  // and a bundle that does not match its own .sha256 is not signed at all
  await rm(`${b}.sig.json`)
  await writeFile(`${b}.sha256`, `${'0'.repeat(64)}  k8s.tar\n`)
  const damaged = await runCli(['sign', b, '--key', ec.key], {env: env(work)})
  t.is(damaged.code, 1)
  t.regex(damaged.stderr, /does not match .*k8s\.tar\.sha256/)
})
