import {spawn, execFile, type ChildProcess} from 'node:child_process'
import {createServer} from 'node:net'
import {openSync, closeSync, appendFileSync} from 'node:fs'
import {promisify} from 'node:util'

const execFileP = promisify(execFile)

/** A loopback port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** Poll `check` until it returns a value other than undefined/false, or fail after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, isAlive?: () => string | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  let delay = 20
  for (;;) {
    const dead = isAlive?.()
    if (dead) throw new Error(`${what}: ${dead}`)
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : ''
      throw new Error(`${what}: not ready after ${timeoutMs} ms${detail}`)
    }
    await sleep(delay)
    delay = Math.min(delay * 2, 250)
  }
}

export async function run(cmd: string, args: string[], options: {env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number} = {}): Promise<{stdout: string; stderr: string}> {
  if (options.input !== undefined) {
    return await new Promise((resolve, reject) => {
      const child = execFile(cmd, args, {env: options.env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 << 20}, (error, stdout, stderr) => {
        if (error) reject(Object.assign(error, {stdout, stderr}))
        else resolve({stdout, stderr})
      })
      child.stdin?.end(options.input)
    })
  }
  return await execFileP(cmd, args, {env: options.env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 << 20})
}

/** A daemon the harness started: known by PID, stopped by PID only. */
export interface ManagedProcess {
  name: string
  pid: number
  child: ChildProcess
  logFile: string
  /** Set once the process has exited. */
  exit?: {code: number | null; signal: NodeJS.Signals | null}
  exited: Promise<void>
}

const tracked = new Set<ManagedProcess>()

/** Every daemon started through `startDaemon` and not yet stopped. */
export function trackedProcesses(): ManagedProcess[] {
  return [...tracked]
}

/**
 * Start a long-running peer with its output appended to `logFile`. It gets its own process group
 * (so a Ctrl-C in the terminal reaches only the harness, which then stops peers in order).
 */
export function startDaemon(name: string, cmd: string, args: string[], options: {logFile: string; env?: NodeJS.ProcessEnv; cwd?: string; pidLog?: string}): ManagedProcess {
  const fd = openSync(options.logFile, 'a')
  let child: ChildProcess
  try {
    child = spawn(cmd, args, {stdio: ['ignore', fd, fd], env: options.env ?? process.env, cwd: options.cwd, detached: true})
  } finally {
    closeSync(fd)
  }
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`)
  const proc: ManagedProcess = {name, pid: child.pid, child, logFile: options.logFile, exited: Promise.resolve()}
  proc.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      proc.exit = {code, signal}
      tracked.delete(proc)
      resolve()
    })
  })
  child.on('error', () => undefined)
  tracked.add(proc)
  if (options.pidLog) appendFileSync(options.pidLog, `${proc.pid} ${name}\n`)
  return proc
}

/** A short reason when the process already died, for `waitFor`. */
export function deathNote(proc: ManagedProcess): string | undefined {
  if (!proc.exit) return undefined
  return `${proc.name} exited early (${proc.exit.signal ?? `code ${proc.exit.code}`}); see ${proc.logFile}`
}

/** SIGTERM the PID, then SIGKILL after `graceMs`. Never signals anything but this PID. */
export async function stopDaemon(proc: ManagedProcess, graceMs = 5000): Promise<void> {
  if (proc.exit) return
  try {
    process.kill(proc.pid, 'SIGTERM')
  } catch {
    return
  }
  const timer = setTimeout(() => {
    try {
      if (!proc.exit) process.kill(proc.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }, graceMs)
  await proc.exited
  clearTimeout(timer)
}
