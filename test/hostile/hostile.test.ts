/**
 * Hostile bundles (fixtures/bundles/hostile/, plus a 100 MB JSON and a tar bomb made at test time) against every
 * command that reads a bundle: `verify`, `inspect`, `push`, `serve`, `load` and install.sh (the good script written
 * beside base.tar, run under dash next to a tampered tar, the way a bundle swapped in transit would be met).
 * Each must refuse with a clear message (an `error:` line, no stack trace) and leave the registry (its _catalog) and
 * the container runtime (the containerd namespace's image list) exactly as they were.
 */
import test, {type ExecutionContext} from 'ava'
import {execFile, execFileSync, spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {randomBytes} from 'node:crypto'
import {copyFile, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {peerTest, type Peers} from '../harness/peers.js'
import {projectRoot, runCli, STACK_LINE, type CliResult} from '../faults/helpers.js'
import {generateLarge, LARGE_CASES, SMALL_CASES} from './generate.js'

const execFileP = promisify(execFile)
const FIXTURES = join(projectRoot, 'fixtures', 'bundles', 'hostile')
const CASES = [...SMALL_CASES, ...LARGE_CASES]
/** `inspect` reads metadata and does not hash blobs (that is `verify`'s job): a same-size flipped byte may pass it. */
/** containerd namespaces are per run, so a rerun on the same peers starts from nothing too. */
const RUN = randomBytes(3).toString('hex')
const INSPECT_MAY_ACCEPT = new Set(['blob-mismatch'])

let work: string
let large: Record<string, string> | undefined
let largeReady: Promise<void> | undefined

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-hostile-'))
  largeReady = generateLarge(join(FIXTURES, 'base.tar'), join(work, 'large')).then((files) => {
    large = files
  })
})

test.after.always(async () => {
  await largeReady?.catch(() => undefined)
  if (work) await rm(work, {recursive: true, force: true})
})

async function bundlePath(name: string): Promise<string> {
  if (LARGE_CASES.some((c) => c.name === name)) {
    await largeReady
    return large![name]
  }
  return join(FIXTURES, `${name}.tar`)
}

/** `verify` reports every problem then `FILE: FAILED: N problem(s)`; the other commands print one `error:` line. */
function assertRefused(t: ExecutionContext, r: CliResult, what: string): void {
  t.false(r.signal !== null, `${what}: did not finish on its own (${r.signal})`)
  t.not(r.code, 0, `${what}: accepted a hostile bundle:\n${r.stdout.slice(0, 2000)}\n${r.stderr.slice(0, 2000)}`)
  const line = `${r.stderr}\n${r.stdout}`.split('\n').find((l) => /^(kubeferry: )?error: |: FAILED: \d+ problem/.test(l))
  t.truthy(line, `${what}: no error line:\n${r.stderr.slice(0, 2000)}`)
  t.true((line ?? '').length < 600, `${what}: the error is not one readable line`)
  t.notRegex(r.stderr, STACK_LINE, `${what}: stack trace`)
  t.notRegex(r.stdout, STACK_LINE, `${what}: stack trace`)
}

test('the committed hostile fixtures are there (regenerate with node scripts/gen-hostile-fixtures.mjs)', (t) => {
  for (const c of SMALL_CASES) t.true(existsSync(join(FIXTURES, `${c.name}.tar`)), c.name)
  t.true(existsSync(join(FIXTURES, 'base.tar')))
})

test('the base bundle itself verifies (so each refusal is about the one thing made wrong)', async (t) => {
  const r = await runCli(['verify', join(FIXTURES, 'base.tar')])
  t.is(r.code, 0, r.stderr)
})

for (const c of CASES) {
  test(`verify refuses ${c.name}: ${c.what}`, async (t) => {
    const r = await runCli(['verify', await bundlePath(c.name)], {timeoutMs: 60_000})
    assertRefused(t, r, `verify ${c.name}`)
  })

  test(`inspect refuses ${c.name}`, async (t) => {
    const r = await runCli(['inspect', await bundlePath(c.name)], {timeoutMs: 60_000})
    if (INSPECT_MAY_ACCEPT.has(c.name) && r.code === 0) {
      t.log(`inspect accepted ${c.name} (it does not hash blobs; verify does)`)
      t.notRegex(r.stderr, STACK_LINE)
      return
    }
    assertRefused(t, r, `inspect ${c.name}`)
  })

  peerTest(`push refuses ${c.name} and the registry is untouched`, ['registries'], async (t, peers) => {
    const registry = peers.registries.open
    const before = await catalog(registry.url)
    const prefix = `kf-hostile-${c.name}`
    const r = await runCli(['push', await bundlePath(c.name), `${registry.host}/${prefix}`], {timeoutMs: 60_000})
    assertRefused(t, r, `push ${c.name}`)
    const after = await catalog(registry.url)
    t.deepEqual(
      after.filter((repo) => repo.startsWith(`${prefix}/`)),
      [],
      `push ${c.name}: repositories appeared in the registry`,
    )
    t.deepEqual(after.filter((repo) => !before.includes(repo) && repo.startsWith('kf-hostile-')), [])
  })

  test(`serve refuses ${c.name} at start`, async (t) => {
    const r = await runCli(['serve', await bundlePath(c.name), '--listen', '127.0.0.1:0'], {timeoutMs: 30_000})
    t.notRegex(r.stdout, /^serving /m, `serve ${c.name}: started serving`)
    assertRefused(t, r, `serve ${c.name}`)
  })

  peerTest(`load refuses ${c.name} and containerd is untouched`, ['containerd'], async (t, peers) => {
    const namespace = `kf-hostile-${RUN}-load-${c.name}`
    const before = await images(peers, namespace)
    const r = await runCli(['load', await bundlePath(c.name), '--runtime', 'containerd', '--address', peers.containerd!.address, '--namespace', namespace], {timeoutMs: 60_000})
    assertRefused(t, r, `load ${c.name}`)
    t.deepEqual(await images(peers, namespace), before, `load ${c.name}: the runtime's images changed`)
  })

  peerTest(`install.sh (dash) refuses ${c.name} and containerd is untouched`, ['containerd'], async (t, peers) => {
    const namespace = `kf-hostile-${RUN}-sh-${c.name}`
    const dir = join(work, `sh-${c.name}`)
    await mkdir(dir, {recursive: true})
    // The operator's script is the one written beside the good bundle (the same bytes as its kubeferry/install.sh);
    // the tar next to it was swapped.
    await writeFile(join(dir, 'bundle.install.sh'), execFileSync('tar', ['-xOf', join(FIXTURES, 'base.tar'), 'kubeferry/install.sh']))
    const bundle = join(dir, 'bundle.tar')
    await copyFile(await bundlePath(c.name), bundle)
    const before = await images(peers, namespace)
    const r = await shell(join(dir, 'bundle.install.sh'), [bundle, '--runtime', 'containerd', '--address', peers.containerd!.address, '--namespace', namespace], {TMPDIR: dir})
    assertRefused(t, r, `install.sh ${c.name}`)
    t.deepEqual(await images(peers, namespace), before, `install.sh ${c.name}: the runtime's images changed`)
  })
}

async function catalog(url: string): Promise<string[]> {
  const res = await fetch(`${url}/v2/_catalog?n=100000`)
  return ((await res.json()) as {repositories?: string[]}).repositories ?? []
}

async function images(peers: Peers, namespace: string): Promise<string[]> {
  const {stdout} = await execFileP(peers.tools.ctr ?? 'ctr', ['--address', peers.containerd!.address, '-n', namespace, 'images', 'ls', '-q'])
  return stdout.split('\n').filter(Boolean).sort()
}

/** Run a script under dash in its own process group; on timeout the whole group (ctr included) is killed. */
async function shell(script: string, args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  const started = Date.now()
  return await new Promise((resolve, reject) => {
    const child = spawn('dash', [script, ...args], {env: {...process.env, ...env}, detached: true, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // already gone
      }
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, stdout, stderr, ms: Date.now() - started})
    })
  })
}
