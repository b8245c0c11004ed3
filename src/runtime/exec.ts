/** Running a runtime's own CLI (ctr, docker, skopeo, podman): captured output, optional stdin stream, no shell. */
import {spawn} from 'node:child_process'
import {accessSync, constants} from 'node:fs'
import {delimiter, join} from 'node:path'
import type {Readable} from 'node:stream'
import {KubeferryError} from '../oci/errors.js'

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv
  input?: Readable
}

export function run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {env: options.env ?? process.env, stdio: [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c))
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c.length + stderr.length > 1e6 ? '' : c))
    child.on('error', (error) => reject(new KubeferryError('RUNTIME', `cannot run ${argv[0]}: ${error.message}`, {hint: `is ${argv[0]} installed and on PATH?`})))
    if (options.input) {
      child.stdin!.on('error', () => undefined) // the child may exit early; its exit code tells why
      options.input.on('error', (error) => child.stdin!.destroy(error))
      options.input.pipe(child.stdin!)
    }
    child.on('close', (code) => resolve({code: code ?? 1, stdout, stderr}))
  })
}

/** Last non-empty line of a tool's stderr, for one-line error messages. */
export function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).pop() ?? ''
}

/** Absolute path of an executable on PATH, like `command -v`. */
export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, name)
    if (isExecutable(candidate)) return candidate
  }
  return undefined
}

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}
