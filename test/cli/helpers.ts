/** Shared by the CLI tests: the built CLI as a child process, and every command class as oclif loads it. */
import {execFile} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Config} from '@oclif/core/config'

export const root = resolve(fileURLToPath(new URL('../../../', import.meta.url)))
export const bin = join(root, 'bin/run.js')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Run `kubeferry ARGS` (stdin a pipe, closed after `input`), with a private HOME so no real credentials are read. */
export async function kubeferry(args: string[], options: {input?: string; env?: NodeJS.ProcessEnv; cwd?: string} = {}): Promise<CliResult> {
  const home = await mkdtemp(join(tmpdir(), 'kf-cli-home-'))
  try {
    return await new Promise((done) => {
      const env = {...process.env, HOME: home, DOCKER_CONFIG: join(home, '.docker'), REGISTRY_AUTH_FILE: join(home, 'auth.json'), NO_COLOR: '1', KUBEFERRY_DEBUG: '', ...options.env}
      const child = execFile(process.execPath, [bin, ...args], {cwd: options.cwd ?? root, env, timeout: 60_000}, (error, stdout, stderr) => {
        done({code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr})
      })
      child.stdin!.end(options.input ?? '')
    })
  } finally {
    await rm(home, {recursive: true, force: true})
  }
}

export interface FlagDef {
  type: 'option' | 'boolean'
  char?: string
  multiple?: boolean
  required?: boolean
  options?: readonly string[]
  description?: string
  exclusive?: string[]
  allowNo?: boolean
}

export interface LoadedCommand {
  id: string
  flags: Record<string, FlagDef>
  args: Record<string, {required?: boolean; description?: string}>
  strict: boolean
  /** Each example's shell command (its description left out), with the binary's name filled in. */
  examples: string[]
  /** A fresh instance for `argv`, whose (protected) parse the tests call. */
  instance(argv: string[]): {parse(): Promise<{flags: Record<string, unknown>; args: Record<string, unknown>; argv: unknown[]}>}
}

let loaded: Promise<{config: Config; commands: LoadedCommand[]}> | undefined

/** Every command of the CLI, loaded by oclif from the build (as `kubeferry` itself loads them). */
export async function commands(): Promise<{config: Config; commands: LoadedCommand[]}> {
  loaded ??= (async () => {
    const config = await Config.load(root)
    const list: LoadedCommand[] = []
    for (const c of [...config.commands].sort((a, b) => a.id.localeCompare(b.id))) {
      const Cmd = (await c.load()) as unknown as {
        new (argv: string[], config: Config): never
        flags?: Record<string, FlagDef>
        baseFlags?: Record<string, FlagDef>
        args?: LoadedCommand['args']
        strict?: boolean
        examples?: Array<string | {command: string; description: string}>
      }
      list.push({
        id: c.id,
        flags: {...Cmd.baseFlags, ...Cmd.flags},
        args: Cmd.args ?? {},
        strict: Cmd.strict !== false,
        examples: (Cmd.examples ?? []).map((e) => (typeof e === 'string' ? e : e.command).replaceAll('<%= config.bin %>', config.bin)),
        instance: (argv) => new Cmd(argv, config),
      })
    }
    return {config, commands: list}
  })()
  return loaded
}
