/** Run another program (a shell, ctr, docker, skopeo) as a test does: never rejects; the result says how it ended. */
import {execFile} from 'node:child_process'

export interface Run {
  code: number
  stdout: string
  stderr: string
}

/** `file args` with process.env plus `env`, a 120 s bound and 16 MiB of output at most. */
export function exec(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, {env: {...process.env, ...env}, timeout: 120_000, maxBuffer: 16 * 1024 * 1024}, (error, stdout, stderr) => {
      done({code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout: String(stdout), stderr: String(stderr)})
    })
  })
}
