/**
 * Progress that tells the truth: bars only on a terminal that reports a usable width (`script` and many CI wrappers
 * give a TTY of width 0, where redrawn bars turned into hundreds of broken lines), and a summary that counts as
 * "from the cache" only blobs that were not fetched (manifests, always read from the registry, were counted as cached).
 */
import test from 'ava'
import {spawnSync} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {canDrawBars} from '../../src/ui/progress.js'
import {needPeers, type Peers} from '../harness/peers.js'
import {cliCommand, runCli} from '../helpers/cli.js'

let work: string
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-progress-'))
})
test.after.always(async () => {
  await rm(work, {recursive: true, force: true})
})

const shell = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`

function createArgs(peers: Peers, output: string, cache: string): string[] {
  const r = peers.registries.open.url
  return ['create', '--image', 'registry.k8s.io/pause:3.10', '--image', 'registry.k8s.io/kube-proxy:v1.31.6', '--image', 'docker.io/library/busybox:1.36', '--platform', 'linux/amd64', '--platform', 'linux/arm64/v8', '--mirror', `registry.k8s.io=${r}`, '--mirror', `docker.io=${r}`, '--cache-dir', cache, '-o', output]
}

test('bars only on a TTY with a known width of at least 40 columns, not TERM=dumb, not CI', (t) => {
  const env = {TERM: 'xterm'}
  t.true(canDrawBars({isTTY: true, columns: 120}, env))
  t.true(canDrawBars({isTTY: true, columns: 40}, env))
  t.false(canDrawBars({isTTY: true, columns: 39}, env))
  t.false(canDrawBars({isTTY: true, columns: 0}, env))
  t.false(canDrawBars({isTTY: true, columns: undefined as unknown as number}, env))
  t.false(canDrawBars({isTTY: false, columns: 120}, env))
  t.false(canDrawBars({isTTY: true, columns: 120}, {TERM: 'dumb'}))
  t.false(canDrawBars({isTTY: true, columns: 120}, {TERM: 'xterm', CI: 'true'}))
})

/** create under `script` (a pty) whose width is set with stty first; returns what the terminal showed. */
function underScript(peers: Peers, cols: number, name: string): {status: number | null; screen: string} {
  const command = `stty cols ${cols}; ${[cliCommand().file, ...cliCommand().args, ...createArgs(peers, join(work, `${name}.tar`), join(work, `${name}-cache`))].map(shell).join(' ')}`
  const r = spawnSync('script', ['-qec', command, '/dev/null'], {encoding: 'utf8', env: {...process.env, CI: '', TERM: 'xterm', SOURCE_DATE_EPOCH: '0'}, timeout: 120_000})
  return {status: r.status, screen: r.stdout}
}

test('a terminal of width 0 (script, stty cols 0) gets plain lines; a wide one gets bars', async (t) => {
  const peers = needPeers(t, 'registries')
  if (!peers) return
  const narrow = underScript(peers, 0, 'cols0')
  t.is(narrow.status, 0, narrow.screen)
  t.false(narrow.screen.includes('\u001b['), `no escape sequences at width 0:\n${JSON.stringify(narrow.screen.slice(0, 400))}`)
  const lines = narrow.screen.split(/\r?\n/).filter(Boolean)
  t.true(lines.length < 15, `${lines.length} lines:\n${narrow.screen}`)
  t.true(lines.some((l) => /^fetched registry\.k8s\.io\/kube-proxy:v1\.31\.6 /.test(l)), narrow.screen)
  t.true(lines.some((l) => l.startsWith('wrote ')), narrow.screen)
  // The same run on a 120-column terminal draws bars (escape sequences): the test tells the two apart.
  const wide = underScript(peers, 120, 'cols120')
  t.is(wide.status, 0, wide.screen)
  t.true(wide.screen.includes('\u001b['), 'bars on a wide terminal')
})

test('an empty cache counts nothing as cached; a warm rerun counts every layer and config as cached', async (t) => {
  const peers = needPeers(t, 'registries')
  if (!peers) return
  const cache = join(work, 'count-cache')
  const cold = await runCli([...createArgs(peers, join(work, 'count.tar'), cache), '--json', '--no-progress'])
  t.is(cold.code, 0, cold.stderr)
  const first = JSON.parse(cold.stdout) as {uniqueBlobs: number; downloadedBlobs: number; cachedBlobs: number; manifests: number}
  t.is(first.cachedBlobs, 0)
  t.true(first.manifests >= 3)
  t.is(first.downloadedBlobs + first.manifests, first.uniqueBlobs)
  const warm = await runCli([...createArgs(peers, join(work, 'count2.tar'), cache), '--no-progress'])
  t.is(warm.code, 0, warm.stderr)
  t.regex(warm.stdout, new RegExp(`${first.uniqueBlobs} unique blobs \\([^;]+; 0 downloaded, ${first.downloadedBlobs} from the cache, ${first.manifests} manifests\\)`))
  const coldText = await runCli([...createArgs(peers, join(work, 'count3.tar'), join(work, 'count-cache-3')), '--no-progress'])
  t.regex(coldText.stdout, new RegExp(`; ${first.downloadedBlobs} downloaded, 0 from the cache, ${first.manifests} manifests\\)`))
  // The per-image lines too: manifests read while planning are not "from the cache" (an empty cache gave "2.2 kB cached").
  t.regex(coldText.stderr, /^fetched /m)
  t.notRegex(coldText.stderr, /from the cache|cached/)
  t.regex(warm.stderr, /^fetched .* from the cache$/m)
})
