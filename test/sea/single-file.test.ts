/**
 * The single files of `npm run package` as shipped (dist/sea/kubeferry-linux-ARCH): each is an executable of its
 * architecture carrying kubeferry's code in a SEA blob; the amd64 one runs with Node.js absent from PATH and says
 * the same as `node bin/run.js`; the arm64 one runs under qemu-user where this machine has it (scripts/test.sh
 * installs it; without it, KUBEFERRY_TEST_NO_QEMU says why, and only the ELF and blob checks hold).
 * The end-to-end flow against the file (create → install.sh, push, serve, verify, load, config) is the CLI tests
 * themselves, run by scripts/test.sh with KUBEFERRY_TEST_CLI=dist/sea/kubeferry-linux-amd64 (test/helpers/cli.ts).
 */
import {spawnSync} from 'node:child_process'
import test from 'ava'
import {cliCommand, pathWithoutNode, projectRoot} from '../helpers/cli.js'
import {ARCHES, arm64Runner, ELF_MACHINE, elfMachine, needSea, NODE_VERSION, PACKAGE_VERSION, run, seaBlob, seaPath} from './helpers.js'

const versionLine = (arch: string): string => `kubeferry/${PACKAGE_VERSION} linux-${arch} node-v${NODE_VERSION}`

for (const arch of ARCHES) {
  test(`${arch}: an ELF executable of its architecture with kubeferry's SEA blob injected`, (t) => {
    const file = needSea(t, arch)
    if (!file) return
    t.is(elfMachine(file), ELF_MACHINE[arch], 'ELF e_machine')
    const blob = seaBlob(file)
    if (!blob) return t.fail('no NODE_SEA_BLOB note with the SEA magic')
    t.true(blob.fuseSet, 'the SEA fuse is set')
    t.true(blob.hasKubeferryCode, 'the blob holds the bundled kubeferry script')
    t.true(blob.size > 1_000_000, `blob of ${blob.size} bytes`)
    t.true((blob.flags & 8) !== 0, 'the code is an asset beside the small main (boot.cjs)')
    t.is(blob.flags & 2, 0, 'no start-up snapshot (build.mjs says why)')
    t.log(`blob ${(blob.size / 2 ** 20).toFixed(1)} MiB, flags ${blob.flags}`)
  })
}

test('the PATH the CLI tests give a binary has no node, and still the tools', (t) => {
  const path = pathWithoutNode(process.env.PATH ?? '/usr/bin:/bin')
  const which = (name: string): number | null => spawnSync('sh', ['-c', `command -v ${name}`], {env: {PATH: path}}).status
  t.not(which('node'), 0, 'node is not found')
  t.not(which('npm'), 0, 'npm is not found')
  t.is(which('sh'), 0)
  t.is(which('tar'), 0)
})

test('amd64: --version and every help page with Node.js absent from PATH, as node bin/run.js says them', async (t) => {
  const file = needSea(t, 'amd64')
  if (!file || process.arch !== 'x64') return
  const env = {...process.env, PATH: pathWithoutNode(process.env.PATH ?? '/usr/bin:/bin'), NO_COLOR: '1', COLUMNS: '100'}
  const version = await run(file, ['--version'], env)
  t.is(version.code, 0, version.stderr)
  t.is(version.stdout.trim(), versionLine('x64'))
  const pages = [['--help'], ...['config', 'create', 'images', 'inspect', 'load', 'push', 'resolve', 'serve', 'verify'].map((c) => [c, '--help']), ['help', 'push']]
  for (const args of pages) {
    const [single, script] = await Promise.all([run(file, args, env), run(process.execPath, [`${projectRoot}bin/run.js`, ...args], env)])
    t.is(single.code, 0, `${args.join(' ')}: ${single.stderr}`)
    // The top page names the node it runs on.
    const same = (s: string): string => s.replace(/ node-v[\d.]+/, ' node-vX')
    t.is(same(single.stdout), same(script.stdout), `kubeferry ${args.join(' ')}`)
  }
  // boot.cjs answers --version without oclif; with DEBUG set, oclif does: the two must say the same.
  const byOclif = await run(file, ['--version', '--json'], {...env, DEBUG: 'kubeferry:nothing'})
  t.is(byOclif.code, 0, byOclif.stderr)
  t.is(byOclif.stdout, version.stdout)
  t.is((await run(file, ['--version', '--json'], env)).stdout, version.stdout)
  // Into a pipe whose reader is gone (EPIPE): quiet and 0, as oclif.
  const gone = await run('sh', ['-c', `(sleep 0.3; "$0" --version; echo "rc=$?" >&2) | true`, file], env)
  t.is(gone.stderr, 'rc=0\n')
  const unknown = await run(file, ['frob'], env)
  t.is(unknown.code, 2)
  t.regex(unknown.stderr, /^error: unknown command "frob" for kubeferry\n {2}hint: /)
})

test('amd64: accepts its code cache; reads colour support and terminal width when it runs, not when it was built', async (t) => {
  const file = needSea(t, 'amd64')
  if (!file || process.arch !== 'x64') return
  const env = {...process.env, PATH: pathWithoutNode(process.env.PATH ?? '/usr/bin:/bin')}
  const debug = await run(file, ['--help'], {...env, DEBUG: 'kubeferry:sea'})
  t.is(debug.code, 0, debug.stderr)
  t.is(debug.stderr, 'kubeferry:sea code cache accepted\n')
  // A start-up snapshot froze what modules read when loaded at build time: help had no bold headings on a terminal.
  for (const look of [{FORCE_COLOR: '1', COLUMNS: '60'}, {NO_COLOR: '1', COLUMNS: '140'}]) {
    const lookEnv = {...env, ...look}
    delete (lookEnv as Record<string, string | undefined>)[look.FORCE_COLOR ? 'NO_COLOR' : 'FORCE_COLOR']
    const [single, script] = await Promise.all([run(file, ['push', '--help'], lookEnv), run(process.execPath, [`${projectRoot}bin/run.js`, 'push', '--help'], lookEnv)])
    t.is(single.stdout, script.stdout, JSON.stringify(look))
    t.is(single.stdout.includes('\u001b['), Boolean(look.FORCE_COLOR), `colour with ${JSON.stringify(look)}`)
  }
})

test('arm64: --version under qemu-user, where this machine has it', async (t) => {
  const file = needSea(t, 'arm64')
  if (!file) return
  const runner = arm64Runner()
  if ('missing' in runner) {
    const why = `cannot run arm64 here: ${runner.missing}`
    if (process.env.CI === 'true' && !process.env.KUBEFERRY_TEST_NO_QEMU) return t.fail(`${why} (scripts/test.sh installs qemu-user-static; it sets KUBEFERRY_TEST_NO_QEMU when it cannot)`)
    t.log(`SKIPPED: ${why}${process.env.KUBEFERRY_TEST_NO_QEMU ? ` (${process.env.KUBEFERRY_TEST_NO_QEMU})` : ''}; the ELF and blob checks above stand for it`)
    return t.pass()
  }
  const version = await run(runner.file, [...runner.args, file, '--version'], {...process.env, PATH: pathWithoutNode(process.env.PATH ?? '/usr/bin:/bin')})
  t.is(version.code, 0, version.stderr)
  t.is(version.stdout.trim(), versionLine('arm64'))
  t.log(`under ${runner.file}: ${version.stdout.trim()}`)
  // A command that works offline, to show more than start-up runs, with the code cache made for arm64.
  const images = await run(runner.file, [...runner.args, file, 'images', '--kubernetes-version', 'v1.31.6', '--json'], {...process.env, DEBUG: 'kubeferry:sea'})
  t.is(images.stderr, 'kubeferry:sea code cache accepted\n')
  t.is(images.code, 0, images.stderr)
  t.true((JSON.parse(images.stdout) as {images: unknown[]}).images.length >= 7)
})

test('one switch picks the build the CLI tests run: KUBEFERRY_TEST_CLI (a binary runs as is), else node bin/run.js', (t) => {
  t.deepEqual(cliCommand({KUBEFERRY_TEST_CLI: seaPath('amd64')}), {file: seaPath('amd64'), args: []})
  t.deepEqual(cliCommand({KUBEFERRY_TEST_CLI: '/opt/kf/run.mjs'}), {file: process.execPath, args: ['/opt/kf/run.mjs']})
  t.deepEqual(cliCommand({}), {file: process.execPath, args: [`${projectRoot}bin/run.js`]})
})
