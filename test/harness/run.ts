/**
 * The test command's engine: start the real peers, build and push the test images, run ava with
 * KUBEFERRY_TEST_PEERS set, tear every peer down by PID, and print `tests: N passed, N failed`.
 *
 *   node dist/test/harness/run.js                       # every dist/test/**\/*.test.js
 *   node dist/test/harness/run.js dist/test/foo.test.js # chosen files (any ava arguments)
 *   node dist/test/harness/run.js --serve               # start the peers, print the peers file, wait for Ctrl-C
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, writeFile} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {buildImageSet} from '../images/builder.js'
import type {Peers} from './peers.js'
import {reapStaleRuns, startPeers, stopPeers, type RunningPeers} from './start-peers.js'
import {countTap, summaryLine} from './tap.js'

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const inCI = process.env.CI === 'true' || process.env.CI === '1'

function log(message: string): void {
  process.stderr.write(`harness: ${message}\n`)
}

let running: RunningPeers | undefined
let ava: ChildProcess | undefined
let tearingDown: Promise<void> | undefined
/** ava's TAP output so far (for the counts when interrupted). */
let avaOut = ''

async function teardown(): Promise<void> {
  tearingDown ??= (async () => {
    if (ava && ava.exitCode === null && ava.pid) {
      try {
        process.kill(ava.pid, 'SIGTERM')
      } catch {
        // gone
      }
    }
    if (running) {
      const t0 = Date.now()
      await stopPeers(running, {keepRunDir: process.env.KUBEFERRY_TEST_KEEP === '1'}).catch((error: unknown) => log(`teardown: ${String(error)}`))
      log(`peers stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    }
  })()
  return tearingDown
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping peers`)
    void teardown().finally(() => {
      const counts = countTap(avaOut)
      process.stdout.write(summaryLine(counts) + '\n')
      process.exit(signal === 'SIGINT' ? 130 : 143)
    })
  })
}

function avaCommand(): {cmd: string; args: string[]} {
  const cli = join(projectRoot, 'node_modules', 'ava', 'entrypoints', 'cli.mjs')
  if (existsSync(cli)) return {cmd: process.execPath, args: [cli]}
  return {cmd: 'npx', args: ['ava']}
}

async function runAva(extraArgs: string[], peersFile: string): Promise<{code: number | null; counts: ReturnType<typeof countTap>}> {
  const {cmd, args} = avaCommand()
  const child = spawn(cmd, [...args, '--tap', ...extraArgs], {
    cwd: projectRoot,
    env: {...process.env, KUBEFERRY_TEST_PEERS: peersFile},
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  ava = child
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (chunk: string) => {
    avaOut += chunk
    process.stdout.write(chunk)
  })
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', (error) => {
      log(`could not run ava: ${error.message}`)
      resolve(127)
    })
    child.on('close', (c) => resolve(c))
  })
  return {code, counts: countTap(avaOut)}
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2)
  const serve = argv.includes('--serve')
  const avaArgs = argv.filter((a) => a !== '--serve')

  const t0 = Date.now()
  await reapStaleRuns(log)
  const runDir = await mkdtemp('/tmp/kubeferry-test-')
  running = await startPeers(runDir, {log, build: (dir) => buildImageSet({dir})})
  const peers: Peers = running.peers
  const peersFile = join(runDir, 'peers.json')
  await writeFile(peersFile, JSON.stringify(peers, null, 2), {mode: 0o600})
  log(`peers ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (run dir ${runDir})`)
  const problems = Object.entries(peers.unavailable)
  for (const [name, reason] of problems) log(`${inCI ? 'FAILED' : 'unavailable'}: peer ${name}: ${reason}`)

  if (serve) {
    log(`peers file: ${peersFile}`)
    log(`run tests with: KUBEFERRY_TEST_PEERS=${peersFile} npx ava <files>   (Ctrl-C here stops the peers)`)
    await new Promise(() => undefined)
  }

  const {code, counts} = await runAva(avaArgs, peersFile)
  await teardown()
  let failed = false
  if (code !== 0) {
    log(`ava exited with ${code}`)
    failed = true
  }
  if (counts.failed > 0) failed = true
  if (counts.passed + counts.failed + counts.skipped + counts.todo === 0) {
    log('ava ran no test')
    failed = true
  }
  if (process.env.KUBEFERRY_BUILD_FAILED === '1') {
    log('FAILED: tsc reported type errors during the build (see above)')
    failed = true
  }
  if (inCI && problems.length > 0) {
    log(`FAILED (CI=true): peer(s) could not start: ${problems.map(([n]) => n).join(', ')}`)
    failed = true
  }
  process.stdout.write(summaryLine(counts) + '\n')
  return failed ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    log(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    await teardown()
    process.stdout.write('tests: 0 passed, 1 failed\n')
    process.exit(1)
  },
)
