/**
 * `create --sign-key` against the real registry: one file and in parts (the statement names the whole bundle's sha256,
 * the one in NAME.tar.sha256), verified by `verify --key` from the first part; a wrong passphrase fails before any
 * download (no bundle written).
 */
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {peerTest} from '../harness/peers.js'
import {runCli} from '../helpers/cli.js'
import {genKey} from './keys.js'

let work: string
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-trust-create-'))
})
test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

peerTest('create --sign-key: one file and --split, each verified with the public key; a wrong passphrase stops it before any download', ['registries'], async (t, peers) => {
  const pass = 'create-pass-31f'
  const key = await genKey(work, 'create', 'p256', pass)
  const env = {KF_PASS: pass, KUBEFERRY_TRUSTED_KEYS: join(work, 'no-policy')}
  const base = ['create', '--image', 'registry.k8s.io/pause:3.10', '--mirror', `registry.k8s.io=${peers.registries.open.url}`, '--cache-dir', join(work, 'cache'), '--no-progress']
  for (const split of [undefined, '1MiB']) {
    const out = join(work, split ? 'parts.tar' : 'one.tar')
    const made = await runCli([...base, '-o', out, ...(split ? ['--split', split] : []), '--sign-key', key.key, '--passphrase-env', 'KF_PASS', '--json'], {env})
    t.is(made.code, 0, made.stderr)
    const summary = JSON.parse(made.stdout) as {sha256: string; signature: {signatureFile: string; statement: {sha256: string}}}
    t.is(summary.signature.signatureFile, `${out}.sig.json`)
    t.is(summary.signature.statement.sha256, summary.sha256, 'the statement names the whole bundle')
    t.is((await readFile(`${out}.sha256`, 'utf8')).split(' ')[0], summary.sha256)
    const verified = await runCli(['verify', split ? `${out}.001` : out, '--key', key.pub], {env})
    t.is(verified.code, 0, verified.stderr)
    t.regex(verified.stdout, /1 of 1 required/)
  }
  const wrong = await runCli([...base, '-o', join(work, 'wrong.tar'), '--sign-key', key.key, '--passphrase-stdin'], {env, stdin: 'nope\n'})
  t.is(wrong.code, 1)
  t.regex(wrong.stderr, /cannot decrypt key .*create\.key: wrong passphrase/)
  t.notRegex(wrong.stderr + wrong.stdout, /resolving|fetched/, 'nothing was fetched')
  t.false(existsSync(join(work, 'wrong.tar')))
})

peerTest('create --sign-key that cannot write the signature: the message says the bundle is complete and gives the exact command that signs it alone; running it works', ['registries'], async (t, peers) => {
  const pass = 'late-pass-7c1'
  const key = await genKey(work, 'late', 'ed25519', pass) // encrypted: the command must carry the passphrase flag
  const env = {KF_LATE: pass, KUBEFERRY_TRUSTED_KEYS: join(work, 'no-policy')}
  const out = join(work, 'late.tar')
  await mkdir(join(`${out}.sig.json`, 'in-the-way'), {recursive: true}) // the signature's path is taken by a directory
  const made = await runCli(['create', '--image', 'registry.k8s.io/pause:3.10', '--mirror', `registry.k8s.io=${peers.registries.open.url}`, '--cache-dir', join(work, 'cache'), '--no-progress', '-o', out, '--sign-key', key.key, '--passphrase-env', 'KF_LATE'], {env})
  t.is(made.code, 1, made.stderr)
  t.regex(made.stderr, new RegExp(`^error: the bundle ${out.replaceAll('.', '\\.')} is written and complete \\(with its \\.sha256 and install\\.sh\\), but signing it \\(--sign-key\\) failed: `, 'm'))
  const hint = /^ {2}hint: (.*)$/m.exec(made.stderr)?.[1] ?? ''
  t.true(hint.startsWith(`move ${out}.sig.json out of the way`), `the hint names the file in the way, not the bundle: ${hint}`)
  const command = /then finish only the signing \(the bundle is not rebuilt\): (kubeferry sign .*)$/.exec(hint)?.[1]
  t.is(command, `kubeferry sign ${out} --key ${key.key} --passphrase-env KF_LATE`, made.stderr)
  t.is((await runCli(['verify', out], {env})).code, 0, 'the bundle stands')
  await rm(`${out}.sig.json`, {recursive: true})
  const signed = await runCli(command!.split(' ').slice(1), {env})
  t.is(signed.code, 0, signed.stderr)
  const verified = await runCli(['verify', out, '--key', key.pub], {env})
  t.is(verified.code, 0, verified.stderr)
})

peerTest('create over a signed bundle: its signature stays when the rebuild is byte for byte the same; otherwise it is moved aside (.old, then .old.1), never deleted', ['registries'], async (t, peers) => {
  const key = await genKey(work, 'again', 'ed25519')
  const env = {KUBEFERRY_TRUSTED_KEYS: join(work, 'no-policy')}
  const out = join(work, 'again.tar')
  const create = (image: string, ...extra: string[]) =>
    runCli(['create', '--image', image, '--mirror', `registry.k8s.io=${peers.registries.open.url}`, '--cache-dir', join(work, 'cache'), '--no-progress', '-o', out, ...extra], {env})
  t.is((await create('registry.k8s.io/pause:3.10', '--sign-key', key.key)).code, 0)
  const signature = await readFile(`${out}.sig.json`, 'utf8')

  const same = await create('registry.k8s.io/pause:3.10')
  t.is(same.code, 0, same.stderr)
  t.notRegex(same.stderr, /moved to/)
  t.is(await readFile(`${out}.sig.json`, 'utf8'), signature, 'the same bytes: the signature still signs them')
  t.is((await runCli(['verify', out, '--key', key.pub], {env})).code, 0)

  const other = await create('registry.k8s.io/coredns/coredns:v1.11.3')
  t.is(other.code, 0, other.stderr)
  t.regex(other.stderr, new RegExp(`^warning: ${out.replaceAll('.', '\\.')}\\.sig\\.json signed the bundle this run replaced, not the new one: moved to ${out.replaceAll('.', '\\.')}\\.sig\\.json\\.old `, 'm'))
  t.false(existsSync(`${out}.sig.json`))
  t.is(await readFile(`${out}.sig.json.old`, 'utf8'), signature, 'kept, not deleted')
  t.is((await runCli(['verify', out], {env})).code, 0, 'the new bundle verifies: no signature contradicts it')

  t.is((await create('registry.k8s.io/pause:3.10', '--sign-key', key.key)).code, 0, 'signed again (the first bundle back)')
  const third = await create('registry.k8s.io/coredns/coredns:v1.11.3')
  t.regex(third.stderr, /moved to .*\.sig\.json\.old\.1 /)
  t.is(await readFile(`${out}.sig.json.old`, 'utf8'), signature, 'the earlier .old is not overwritten')
  t.true(existsSync(`${out}.sig.json.old.1`))
})
