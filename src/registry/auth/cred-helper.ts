import {spawn} from 'node:child_process'
import type {Credential} from './credential.js'

export type HelperResult =
  | {kind: 'found'; credential: Credential}
  | {kind: 'none'}
  | {kind: 'failed'; reason: string}

const HELPER_TIMEOUT_MS = 15_000

/**
 * Ask `docker-credential-<name> get` for the credentials of `serverUrl` (written to its stdin).
 * The protocol answers `{"ServerURL","Username","Secret"}`; Username `<token>` means Secret is an
 * identity token. "credentials not found" is a normal miss, not a failure. The helper's output is
 * never echoed into messages: it may hold the secret.
 */
export function runCredentialHelper(name: string, serverUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<HelperResult> {
  const program = `docker-credential-${name}`
  return new Promise((resolve) => {
    let settled = false
    const done = (result: HelperResult) => {
      if (!settled) {
        settled = true
        clearTimeout(timer)
        resolve(result)
      }
    }
    let child
    try {
      child = spawn(program, ['get'], {env, stdio: ['pipe', 'pipe', 'pipe']})
    } catch (error) {
      done({kind: 'failed', reason: `${program} could not be started (${(error as NodeJS.ErrnoException).code ?? 'error'})`})
      return
    }
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      done({kind: 'failed', reason: `${program} did not answer within ${HELPER_TIMEOUT_MS / 1000}s`})
    }, HELPER_TIMEOUT_MS)
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => stdout.push(c))
    child.stderr.on('data', (c: Buffer) => stderr.push(c))
    child.stdin.on('error', () => {}) // helper exited before reading: reported through 'close'
    child.on('error', (error: NodeJS.ErrnoException) => {
      done({kind: 'failed', reason: error.code === 'ENOENT' ? `${program} is not installed (not found on PATH)` : `${program} could not be started (${error.code ?? error.message})`})
    })
    child.on('close', (code) => {
      const out = Buffer.concat(stdout).toString('utf8')
      const err = Buffer.concat(stderr).toString('utf8')
      if (code !== 0) {
        if (/credentials not found/i.test(out + err)) done({kind: 'none'})
        else done({kind: 'failed', reason: `${program} exited with status ${code}`})
        return
      }
      try {
        const json = JSON.parse(out) as {Username?: unknown; Secret?: unknown}
        const username = typeof json.Username === 'string' ? json.Username : ''
        const secret = typeof json.Secret === 'string' ? json.Secret : ''
        if (secret === '') done({kind: 'none'})
        else if (username === '<token>') done({kind: 'found', credential: {identityToken: secret}})
        else done({kind: 'found', credential: {username, password: secret}})
      } catch {
        done({kind: 'failed', reason: `${program} printed something that is not the credential-helper JSON`})
      }
    })
    child.stdin.end(serverUrl)
  })
}
