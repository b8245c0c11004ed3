/**
 * Secrets never leak: every command is run with credentials given every way an operator can give them
 * (--username + --password-stdin, docker config.json `auths`, a credential helper, an identity token for the token
 * registry), with --json and --debug too, and every stdout, stderr, bundle, .sha256, install.sh, lock file, cache
 * file and generated config is searched for the secret in clear, in base64, and as base64(user:secret). The only
 * file allowed to carry it is the pull Secret manifest that `config --for secret` was asked for (checked to really
 * hold it, so the search is known to look in the right place).
 */
import test, {type ExecutionContext} from 'ava'
import {statSync} from 'node:fs'
import {chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parse as parseYaml} from 'yaml'
import {peerTest, type Peers} from '../harness/peers.js'
import {runCli, type CliResult} from '../faults/helpers.js'

const IMAGES = ['registry.k8s.io/pause:3.10', 'docker.io/library/busybox:1.36']

let work: string
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-secrets-'))
})
test.after.always(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

const b64 = (s: string): string => Buffer.from(s).toString('base64')

/** The forms a secret may take in a leak. Base64 without padding, so it is found inside longer encodings too. */
function needles(user: string, secret: string): string[] {
  return [...new Set([secret, b64(secret).replace(/=+$/, ""), b64(`${user}:${secret}`).replace(/=+$/, ""), encodeURIComponent(secret)])]
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const name of await readdir(dir)) {
    const path = join(dir, name)
    if ((await stat(path)).isDirectory()) out.push(...(await filesUnder(path)))
    else out.push(path)
  }
  return out
}

interface Leak {
  where: string
  needle: string
}

function search(text: string, where: string, secrets: string[]): Leak[] {
  return secrets.filter((n) => text.includes(n)).map((needle) => ({where, needle: `${needle.slice(0, 3)}…`}))
}

/** Search every output of the runs and every file under `outDir` (except `allowed`). */
async function leaks(runs: Array<{name: string; r: CliResult}>, outDir: string, secrets: string[], allowed: string[] = []): Promise<Leak[]> {
  const found: Leak[] = []
  for (const {name, r} of runs) {
    found.push(...search(r.stdout, `${name} stdout`, secrets), ...search(r.stderr, `${name} stderr`, secrets))
    // A bearer token or Basic header echoed anywhere is a leak whatever its value.
    if (/authorization:\s*(basic|bearer)\s+\S/i.test(r.stdout + r.stderr)) found.push({where: `${name} output`, needle: 'Authorization header'})
  }
  for (const file of await filesUnder(outDir)) {
    if (allowed.includes(file)) continue
    found.push(...search((await readFile(file)).toString('latin1'), file.slice(outDir.length + 1), secrets))
  }
  return found
}

test('the leak search finds a planted secret in every form it looks for', async (t) => {
  const dir = join(work, 'planted')
  await mkdir(dir, {recursive: true})
  const secret = 'planted-S3cret'
  await writeFile(join(dir, 'plain.txt'), `x ${secret} y`)
  await writeFile(join(dir, 'b64.bin'), Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(`{"auth":"${b64(`bob:${secret}`)}"}`)]))
  const fake: CliResult = {code: 0, signal: null, stdout: `token ${b64(secret)}`, stderr: 'authorization: Bearer abc', ms: 0}
  const found = await leaks([{name: 'fake', r: fake}], dir, needles('bob', secret))
  t.deepEqual(found.map((f) => f.where).sort(), ['b64.bin', 'fake output', 'fake stdout', 'plain.txt'])
})

function ok(t: ExecutionContext, name: string, r: CliResult): void {
  t.is(r.code, 0, `${name} failed: ${r.stderr}`)
}

function mirrors(url: string): string[] {
  return ['--mirror', `registry.k8s.io=${url}`, '--mirror', `docker.io=${url}`]
}

peerTest('secrets: --username/--password-stdin through resolve, images --lock, create, inspect, verify, push, load, config', ['registries', 'containerd'], async (t, peers) => {
  const reg = peers.registries.htpasswd
  const user = reg.username!
  const secret = reg.password!
  const out = join(work, 'flags')
  await mkdir(out, {recursive: true})
  const creds = ['--username', user, '--password-stdin']
  const stdin = `${secret}\n`
  const bundle = join(out, 'bundle.tar')
  const runs: Array<{name: string; r: CliResult}> = []
  const run = async (name: string, args: string[], withSecret = true): Promise<CliResult> => {
    const r = await runCli(args, {stdin: withSecret ? stdin : ''})
    runs.push({name, r})
    ok(t, name, r)
    return r
  }
  await run('resolve --debug', ['resolve', `${reg.host}/pause:3.10`, ...creds, '--debug'])
  await run('resolve --json', ['resolve', `${reg.host}/pause:3.10`, ...creds, '--json'])
  await run('images --digests --lock', ['images', ...IMAGES.flatMap((i) => ['--image', i]), '--digests', '--lock', join(out, 'images.lock.json'), ...mirrors(reg.url), ...creds])
  await run('create --json --debug', ['create', '--lock', join(out, 'images.lock.json'), ...mirrors(reg.url), ...creds, '--cache-dir', join(out, 'cache'), '--no-progress', '--json', '--debug', '-o', bundle])
  await run('inspect --json', ['inspect', bundle, '--json'], false)
  await run('verify', ['verify', bundle], false)
  await run('push --json --debug', ['push', bundle, `${reg.host}/kf-secrets`, ...creds, '--json', '--debug'])
  await run('load --json', ['load', bundle, '--runtime', 'containerd', '--address', peers.containerd!.address, '--namespace', 'kf-secrets', '--json'], false)
  const configDir = join(out, 'config')
  await run('config --for all', ['config', '--registry', `${reg.host}/kf-secrets`, '--bundle', bundle, '--for', 'all', ...creds, '-o', configDir])
  await run('config --for secret --json', ['config', '--registry', `${reg.host}/kf-secrets`, '--for', 'kubeadm', '--for', 'containerd', ...creds, '--json'])

  // The Secret that was asked for really holds the credentials (so the search below looks at the right bytes)…
  const secretFile = join(configDir, 'kubeferry-pull-secret.yaml')
  const docs = (await readFile(secretFile, 'utf8')).split(/^---$/m).map((d) => parseYaml(d) as {kind?: string; data?: Record<string, string>} | null)
  const pull = docs.find((d) => d?.kind === 'Secret')
  const dockerconfig = JSON.parse(Buffer.from(pull!.data!['.dockerconfigjson'], 'base64').toString('utf8')) as {auths: Record<string, {auth: string}>}
  t.is(Buffer.from(dockerconfig.auths[reg.host].auth, 'base64').toString('utf8'), `${user}:${secret}`)
  // …and nothing else anywhere does.
  t.deepEqual(await leaks(runs, out, needles(user, secret), [secretFile]), [])
})

async function dockerConfig(dir: string, content: unknown): Promise<string> {
  await mkdir(dir, {recursive: true})
  await writeFile(join(dir, 'config.json'), JSON.stringify(content))
  return dir
}

async function createAndPush(t: ExecutionContext, peers: Peers, name: string, registry: 'htpasswd' | 'token', env: NodeJS.ProcessEnv, stdin = ''): Promise<{runs: Array<{name: string; r: CliResult}>; out: string}> {
  const reg = peers.registries[registry]
  const out = join(work, name, 'out')
  await mkdir(out, {recursive: true})
  const runs: Array<{name: string; r: CliResult}> = []
  const bundle = join(out, 'bundle.tar')
  const create = await runCli(['create', ...IMAGES.flatMap((i) => ['--image', i]), ...mirrors(reg.url), '--cache-dir', join(out, 'cache'), '--no-progress', '--debug', '-o', bundle], {env, stdin})
  runs.push({name: `${name} create`, r: create})
  ok(t, `${name} create`, create)
  const push = await runCli(['push', bundle, `${reg.host}/kf-secrets-${name}`, '--json', '--debug'], {env, stdin})
  runs.push({name: `${name} push`, r: push})
  ok(t, `${name} push`, push)
  return {runs, out}
}

peerTest('secrets: docker config.json auths', ['registries'], async (t, peers) => {
  const reg = peers.registries.htpasswd
  const cfg = await dockerConfig(join(work, 'auths', 'docker'), {auths: {[reg.host]: {auth: b64(`${reg.username}:${reg.password}`)}}})
  const {runs, out} = await createAndPush(t, peers, 'auths', 'htpasswd', {DOCKER_CONFIG: cfg})
  t.deepEqual(await leaks(runs, out, needles(reg.username!, reg.password!)), [])
})

peerTest('secrets: a docker-credential helper (credHelpers)', ['registries'], async (t, peers) => {
  const reg = peers.registries.htpasswd
  const bin = join(work, 'helper', 'bin')
  await mkdir(bin, {recursive: true})
  const helper = join(bin, 'docker-credential-kfsecret')
  await writeFile(helper, `#!/bin/sh\n[ "$1" = get ] || exit 1\nread -r host\nprintf '{"ServerURL":"%s","Username":"${reg.username}","Secret":"${reg.password}"}\\n' "$host"\n`)
  await chmod(helper, 0o755)
  const cfg = await dockerConfig(join(work, 'helper', 'docker'), {credHelpers: {[reg.host]: 'kfsecret'}})
  const {runs, out} = await createAndPush(t, peers, 'helper', 'htpasswd', {DOCKER_CONFIG: cfg, PATH: `${bin}:${process.env.PATH}`})
  t.deepEqual(await leaks(runs, out, needles(reg.username!, reg.password!)), [])
})

peerTest('secrets: token registry with an identity token (refresh token) and with a password', ['registries'], async (t, peers) => {
  const reg = peers.registries.token
  const cfg = await dockerConfig(join(work, 'token', 'docker'), {auths: {[reg.host]: {username: '<token>', identitytoken: reg.identityToken}}})
  const a = await createAndPush(t, peers, 'identity', 'token', {DOCKER_CONFIG: cfg})
  const secrets = [...needles(reg.username!, reg.identityToken), ...needles('<token>', reg.identityToken)]
  t.deepEqual(await leaks(a.runs, a.out, secrets), [])
  // Bearer tokens the token server issued are JWTs (eyJ…): none may appear in any output or file.
  const jwt = /eyJ[\w-]{10,}\.[\w-]{10,}\./
  for (const {name, r} of a.runs) t.notRegex(r.stdout + r.stderr, jwt, `${name} printed a bearer token`)

  const bundle = join(a.out, 'bundle.tar')
  const withPassword = await runCli(['push', bundle, `${reg.host}/kf-secrets-tokenpw`, '--username', reg.username!, '--password-stdin', '--debug'], {stdin: `${reg.password}\n`})
  ok(t, 'token push with password', withPassword)
  t.deepEqual(await leaks([{name: 'token push --password-stdin', r: withPassword}], a.out, needles(reg.username!, reg.password!)), [])
  t.notRegex(withPassword.stdout + withPassword.stderr, jwt)
})

peerTest('secrets: a wrong password is not echoed in the error', ['registries'], async (t, peers) => {
  const reg = peers.registries.htpasswd
  const wrong = 'Wr0ng-Secret-Value-42'
  const r = await runCli(['resolve', `${reg.host}/pause:3.10`, '--username', reg.username!, '--password-stdin', '--debug'], {stdin: `${wrong}\n`})
  t.not(r.code, 0)
  t.deepEqual(search(r.stdout + r.stderr, 'resolve', needles(reg.username!, wrong)), [])
})

/** Every form a private key's bytes could leak in: its secret scalar (JWK d: base64url, base64, hex, raw), its PEM body. */
async function privateKeyNeedles(file: string, passphrase: string): Promise<string[]> {
  const {createPrivateKey} = await import('node:crypto')
  const pem = await readFile(file, 'utf8')
  const key = createPrivateKey({key: pem, passphrase})
  const d = Buffer.from(key.export({format: 'jwk'}).d!, 'base64url')
  const plainPem = key.export({type: 'pkcs8', format: 'pem'}).toString()
  const bodyLine = (text: string): string => text.split('\n').filter((l) => l && !l.startsWith('-----') && !l.includes(':'))[0].slice(0, 40)
  return [d.toString('base64url'), d.toString('base64').replace(/=+$/, ''), d.toString('hex'), d.toString('latin1'), bodyLine(pem), bodyLine(plainPem)]
}

peerTest('secrets: signing keys and their passphrases (create --sign-key, sign, verify, inspect, load, install.sh)', ['registries'], async (t, peers) => {
  const {execFile} = await import('node:child_process')
  const {promisify} = await import('node:util')
  const run = promisify(execFile)
  const pass = 'Sign-Passphrase-9f3Kq2'
  const keys = join(work, 'signing-keys')
  const out = join(work, 'signing', 'out')
  await mkdir(keys, {recursive: true})
  await mkdir(out, {recursive: true})
  const ec = join(keys, 'ec.key')
  const ed = join(keys, 'ed.key')
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes256', '-pass', `pass:${pass}`, '-out', ec])
  await run('openssl', ['genpkey', '-algorithm', 'ed25519', '-aes256', '-pass', `pass:${pass}`, '-out', ed])
  for (const k of [ec, ed]) await run('openssl', ['pkey', '-in', k, '-passin', `pass:${pass}`, '-pubout', '-out', k.replace(/\.key$/, '.pub')])
  const bundle = join(out, 'bundle.tar')
  const env = {KF_SIGN_PASS: pass, KUBEFERRY_TRUSTED_KEYS: join(work, 'signing', 'no-policy')}
  const runs: Array<{name: string; r: CliResult}> = []
  const step = async (name: string, args: string[], options: {stdin?: string; env?: NodeJS.ProcessEnv; fails?: boolean} = {}): Promise<void> => {
    const r = await runCli(args, {stdin: options.stdin ?? '', env: {...env, ...options.env}})
    runs.push({name, r})
    if (options.fails) t.not(r.code, 0, `${name} should fail`)
    else ok(t, name, r)
  }
  await step('create --sign-key --passphrase-env --json --debug', ['create', ...IMAGES.flatMap((i) => ['--image', i]), ...mirrors(peers.registries.open.url), '--cache-dir', join(out, 'cache'), '--no-progress', '--json', '--debug', '-o', bundle, '--sign-key', ec, '--passphrase-env', 'KF_SIGN_PASS'])
  await step('sign --passphrase-stdin --json --debug', ['sign', bundle, '--key', ed, '--passphrase-stdin', '--json', '--debug'], {stdin: `${pass}\n`})
  await step('sign with a wrong passphrase --debug', ['sign', bundle, '--key', ed, '--passphrase-stdin', '--debug'], {stdin: `${pass}-wrong\n`, fails: true})
  await step('sign with the passphrase env unset --json', ['sign', bundle, '--key', ed, '--passphrase-env', 'KF_NOT_SET', '--json'], {fails: true})
  await step('sign without a passphrase', ['sign', bundle, '--key', ec], {fails: true})
  await step('sign with the private key as a public one (verify --key KEY)', ['verify', bundle, '--key', ec, '--debug'], {fails: true})
  const pubs = ['--key', ec.replace(/\.key$/, '.pub'), '--key', ed.replace(/\.key$/, '.pub'), '--require-signatures', '2']
  await step('verify --json --debug', ['verify', bundle, ...pubs, '--json', '--debug'])
  await step('inspect --json', ['inspect', bundle, ...pubs, '--json'])
  await step('load --verify-only --json', ['load', bundle, ...pubs, '--verify-only', '--json'])
  const script = await new Promise<{code: number; stdout: string; stderr: string}>((done) =>
    execFile('dash', [join(out, 'bundle.install.sh'), bundle, '--verify-only', ...pubs], (error, stdout, stderr) => done({code: error ? 1 : 0, stdout, stderr})),
  )
  t.is(script.code, 0, script.stderr)
  runs.push({name: 'install.sh --verify-only --key', r: {code: script.code, signal: null, stdout: script.stdout, stderr: script.stderr, ms: 0}})
  t.true(existsSyncSafe(`${bundle}.sig.json`), 'the search below reads the signature file too')
  const secrets = [...needles('', pass), ...(await privateKeyNeedles(ec, pass)), ...(await privateKeyNeedles(ed, pass))]
  t.deepEqual(await leaks(runs, out, secrets), [])
})

function existsSyncSafe(path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}
