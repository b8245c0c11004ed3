/**
 * The one way tests run the built CLI, as an operator would.
 *
 * Which build runs is one switch: KUBEFERRY_TEST_CLI=/path/to/executable (a single-file executable, an installed
 * `kubeferry`, …); a path ending in .js/.mjs runs under this Node. Default: `node bin/run.js` of this checkout.
 * A binary executable (not a `#!` script) is the single file, which must run where Node.js is not installed: it runs
 * with Node.js hidden from its PATH (each PATH directory holding `node` is replaced by a copy of it without node,
 * npm, npx, corepack), the test's own PATH included.
 *
 *   const r = await runCli(['verify', bundle, '--json'], {stdin, env, timeoutMs, signal})
 *   r.code, r.signal, r.stdout, r.stderr, r.ms
 *
 * `spawnCli` starts it without waiting (long-running `serve`, a run killed mid-way).
 */
import {spawn, type ChildProcess, type SpawnOptions} from 'node:child_process'
import {closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, symlinkSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {delimiter, join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The checkout (dist/test/helpers/cli.js is three levels below it). */
export const projectRoot = fileURLToPath(new URL('../../../', import.meta.url))

/** The command that runs kubeferry: `[file, ...leading args]`. */
export function cliCommand(env: NodeJS.ProcessEnv = process.env): {file: string; args: string[]} {
  const chosen = env.KUBEFERRY_TEST_CLI?.trim()
  const target = chosen || join(projectRoot, 'bin', 'run.js')
  return /\.m?js$/.test(target) ? {file: process.execPath, args: [target]} : {file: target, args: []}
}

/**
 * scripts/test.sh runs its SEA_TESTS files a second time, against the single file, with KUBEFERRY_TEST_SEA_SUBSET=1.
 * That run is for what differs in the single file (it starts without Node.js, from its bundled code and assets); a
 * test that would rerun none of it is registered in the first run only: `if (firstRunOnly('why')) test(…)`. The why
 * is for the reviewer: the test never starts the CLI, or checks only argument parsing or messages (the same code in
 * both builds). Every SEA_TESTS file must keep a test in that run (ava fails a file with none).
 */
export function firstRunOnly(_why: string): boolean {
  return process.env.KUBEFERRY_TEST_SEA_SUBSET !== '1'
}

const binaries = new Map<string, boolean>()

/** True when `file` is a binary executable (ELF), not a `#!` script or JavaScript. */
export function isBinaryExecutable(file: string): boolean {
  if (!binaries.has(file)) binaries.set(file, readsAsElf(file))
  return binaries.get(file)!
}

function readsAsElf(file: string): boolean {
  if (/\.m?js$/.test(file)) return false
  const head = Buffer.alloc(4)
  let fd: number | undefined
  try {
    fd = openSync(file, 'r')
    readSync(fd, head, 0, 4, 0)
  } catch {
    return false
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
  return head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))
}

const NODE_TOOLS = new Set(['node', 'nodejs', 'npm', 'npx', 'corepack'])
let shadowRoot: string | undefined
const shadows = new Map<string, string>()

/** `path` with every directory that holds `node` replaced by a copy of it (symlinks) without Node.js's tools. */
export function pathWithoutNode(path: string): string {
  return path
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => {
      if (!existsSync(join(dir, 'node'))) return dir
      let shadow = shadows.get(dir)
      if (!shadow) {
        if (!shadowRoot) {
          const root = mkdtempSync(join(tmpdir(), 'kf-no-node-'))
          shadowRoot = root
          process.once('exit', () => rmSync(root, {recursive: true, force: true}))
        }
        shadow = join(shadowRoot, String(shadows.size))
        mkdirSync(shadow)
        for (const name of readdirSync(dir)) if (!NODE_TOOLS.has(name)) symlinkSync(join(dir, name), join(shadow, name))
        shadows.set(dir, shadow)
      }
      return shadow
    })
    .join(delimiter)
}

export interface CliResult {
  /** Exit code; null when a signal ended it. */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** Wall time from spawn to exit. */
  ms: number
}

export interface CliOptions {
  /** Written to stdin, which is then closed (default: empty). */
  stdin?: string | Buffer
  /** Added to this process's environment (a value of undefined removes the variable). */
  env?: NodeJS.ProcessEnv
  /** Default: the project root. */
  cwd?: string
  /** SIGKILL after this long (default 180 s). */
  timeoutMs?: number
  /** Aborting it sends SIGTERM (the process may still clean up; the result says how it ended). */
  signal?: AbortSignal
  /** Called once the process runs (to kill it at the right moment, for instance). */
  onSpawn?: (child: ChildProcess) => void
  /** Run with an empty HOME of its own (no docker or containers credentials of this machine), removed afterwards. */
  privateHome?: boolean
  /** Standard output goes to this file descriptor (e.g. of /dev/full) instead of a pipe; the result's stdout is ''. */
  stdoutFd?: number
}

function environment(extra: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const env = {...process.env, ...extra}
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key]
  const {file} = cliCommand()
  if (file !== process.execPath && isBinaryExecutable(file)) env.PATH = pathWithoutNode(env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
  return env
}

/** Start the CLI and return the child (stdio: pipes unless `stdio` says otherwise); the caller waits for it. */
export function spawnCli(args: string[], options: Omit<CliOptions, 'stdin' | 'timeoutMs' | 'onSpawn'> & {stdio?: SpawnOptions['stdio']} = {}): ChildProcess {
  const {file, args: lead} = cliCommand()
  return spawn(file, [...lead, ...args], {
    cwd: options.cwd ?? projectRoot,
    env: environment(options.env),
    stdio: options.stdio ?? ['pipe', 'pipe', 'pipe'],
    ...(options.signal ? {signal: options.signal, killSignal: 'SIGTERM' as const} : {}),
  })
}

/** At most this many CLI runs at once per test file (the machine has 2 cores; timing cases need headroom). */
const MAX_PARALLEL = Number(process.env.KUBEFERRY_TEST_CLI_PARALLEL ?? 3)
let running = 0
const waiting: Array<() => void> = []

async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_PARALLEL) await new Promise<void>((resolve) => waiting.push(resolve))
  running++
  try {
    return await fn()
  } finally {
    running--
    waiting.shift()?.()
  }
}

/** Run the CLI to its end; never rejects on a non-zero exit (the result says it), only when it cannot start. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  if (!options.privateHome) return slot(() => runNow(args, options))
  const home = await mkdtemp(join(tmpdir(), 'kf-cli-home-'))
  try {
    const env = {HOME: home, DOCKER_CONFIG: join(home, '.docker'), REGISTRY_AUTH_FILE: join(home, 'auth.json'), ...options.env}
    return await slot(() => runNow(args, {...options, env}))
  } finally {
    await rm(home, {recursive: true, force: true})
  }
}

function runNow(args: string[], options: CliOptions): Promise<CliResult> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, {...options, stdio: ['pipe', options.stdoutFd ?? 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 180_000)
    child.on('error', (error) => {
      // An abort is reported through 'close' with the signal; anything else means it never ran.
      if ((error as {name?: string}).name === 'AbortError') return
      clearTimeout(timer)
      reject(error)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, stdout, stderr, ms: Date.now() - started})
    })
    child.stdin!.on('error', () => undefined) // the child may exit before reading its input
    child.stdin!.end(options.stdin ?? '')
    options.onSpawn?.(child)
  })
}
