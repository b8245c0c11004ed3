/**
 * `create --with-tool` (src/cli/with-tool.ts): the single file of each carried architecture beside the bundle as
 * NAME.kubeferry-linux-ARCH, listed in NAME.tar.sha256 after the bundle's line; install.sh still checks the bundle;
 * the carried amd64 file runs kubeferry with Node.js absent from PATH. Runs through runCli, so against whichever
 * build KUBEFERRY_TEST_CLI picks: `node bin/run.js` takes the files from dist/sea/, the single file copies itself
 * and the file beside it.
 */
import {execFile} from 'node:child_process'
import {copyFile, mkdir, mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import test from 'ava'
import {toolArches} from '../../src/cli/with-tool.js'
import {peerTest} from '../harness/peers.js'
import {firstRunOnly, pathWithoutNode, runCli} from '../helpers/cli.js'
import {needSea, run, seaPath} from './helpers.js'

const execFileP = promisify(execFile)

if (firstRunOnly('never starts the CLI')) test('the architectures --with-tool carries: linux amd64 and arm64 (any variant); other platforms are named', (t) => {
  t.deepEqual(toolArches(['linux/arm64/v8', 'linux/amd64', 'linux/arm64', 'linux/s390x', 'windows/amd64']), {arches: ['amd64', 'arm64'], without: ['linux/s390x', 'windows/amd64']})
  t.deepEqual(toolArches(['all']), {arches: [], without: []})
})

peerTest('create --with-tool: one file per carried architecture beside the bundle, in NAME.tar.sha256; it runs verify without Node.js', ['registries'], async (t, peers) => {
  if (!needSea(t, 'amd64') || !needSea(t, 'arm64')) return
  const dir = await mkdtemp(join(tmpdir(), 'kf-with-tool-'))
  try {
    const bundle = join(dir, 'k8s.tar')
    const args = ['create', '--image', 'registry.k8s.io/pause:3.10', '--platform', 'linux/amd64', '--platform', 'linux/arm64/v8', '--mirror', `registry.k8s.io=${peers.registries.open.url}`]
    const r = await runCli([...args, '-o', bundle, '--cache-dir', join(dir, 'cache'), '--with-tool', '--json'])
    t.is(r.code, 0, r.stderr)
    const tools = (JSON.parse(r.stdout) as {tools: Array<{arch: string; path: string; sha256: string; source: string}>}).tools
    t.deepEqual(tools.map((tool) => tool.path), [join(dir, 'k8s.kubeferry-linux-amd64'), join(dir, 'k8s.kubeferry-linux-arm64')])
    // Byte for byte the single files of this build.
    for (const tool of tools) t.true((await readFile(tool.path)).equals(await readFile(seaPath(tool.arch as 'amd64' | 'arm64'))), `${tool.arch} from ${tool.source}`)
    const sums = (await readFile(`${bundle}.sha256`, 'utf8')).trim().split('\n')
    t.regex(sums[0], /^[0-9a-f]{64} {2}k8s\.tar$/, 'the bundle stays first (install.sh and load read the first line)')
    t.deepEqual(sums.slice(1), tools.map((tool) => `${tool.sha256}  k8s.kubeferry-linux-${tool.arch}`))
    const check = await execFileP('sha256sum', ['-c', 'k8s.tar.sha256'], {cwd: dir})
    t.is(check.stdout.trim().split('\n').filter((l) => l.endsWith(': OK')).length, 3, check.stdout)
    const script = await execFileP('sh', [join(dir, 'k8s.install.sh'), bundle, '--verify-only'], {env: {PATH: '/usr/sbin:/usr/bin:/sbin:/bin'}})
    t.regex(script.stdout + script.stderr, /checksum ok/, 'install.sh checks the bundle against its line')
    if (process.arch === 'x64') {
      const verify = await run(tools[0].path, ['verify', bundle], {...process.env, PATH: pathWithoutNode(process.env.PATH ?? '/usr/bin:/bin')})
      t.is(verify.code, 0, verify.stderr)
    }
    // A rerun replaces its lines instead of adding more.
    const again = await runCli([...args, '-o', bundle, '--cache-dir', join(dir, 'cache'), '--with-tool'])
    t.is(again.code, 0, again.stderr)
    t.deepEqual((await readFile(`${bundle}.sha256`, 'utf8')).trim().split('\n'), sums)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})

if (firstRunOnly('it runs the single file itself in both runs')) test('create --with-tool without the file of a carried architecture: one line naming it and where to get it, before any download', async (t) => {
  const amd64 = needSea(t, 'amd64')
  if (!amd64 || process.arch !== 'x64') return
  const dir = await mkdtemp(join(tmpdir(), 'kf-with-tool-'))
  try {
    // The single file alone in a directory: it has itself (amd64) but no arm64 beside it.
    await mkdir(join(dir, 'bin'))
    const lone = join(dir, 'bin', 'kubeferry')
    await copyFile(amd64, lone)
    await execFileP('chmod', ['755', lone])
    const bundle = join(dir, 'k8s.tar')
    const r = await run(lone, ['create', '--kubernetes-version', 'v1.31.6', '--platform', 'linux/amd64,linux/arm64', '-o', bundle, '--cache-dir', join(dir, 'cache'), '--with-tool'], {
      ...process.env,
      PATH: pathWithoutNode(process.env.PATH ?? '/usr/bin:/bin'),
    })
    t.is(r.code, 1, r.stderr)
    t.regex(r.stderr, /^error: --with-tool: no kubeferry single file for linux\/arm64 \(looked for .*bin\/kubeferry-linux-arm64\)\n {2}hint: put kubeferry-linux-arm64 .* beside the kubeferry you run, or leave out --with-tool; nothing was downloaded\n$/)
    await t.throwsAsync(readFile(bundle), {code: 'ENOENT'})
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})
