import * as Flags from '@oclif/core/flags'
import {KubeferryError} from '../oci/errors.js'
import {debugFromEnvironment} from './debug.js'
import {defaultCredentialProvider} from '../registry/auth/credentials.js'
import type {RegistryClientOptions} from '../registry/client.js'

/** Flags every command that talks to registries spreads into its own `flags`. */
export const registryFlags = {
  mirror: Flags.string({
    description: 'Fetch a registry\'s images from a mirror, keeping canonical names: UPSTREAM=URL (repeatable; tried in order, then the upstream). A URL path is a repository prefix.',
    multiple: true,
    helpValue: 'registry.k8s.io=http://127.0.0.1:5000',
    helpGroup: 'REGISTRY',
  }),
  'insecure-registry': Flags.string({
    description: 'Allow plain HTTP or unverified TLS for this host[:port] (repeatable). Loopback hosts are allowed by default, as in docker.',
    multiple: true,
    helpValue: 'HOST[:PORT]',
    helpGroup: 'REGISTRY',
  }),
  'ca-file': Flags.string({description: 'PEM file of extra CA certificates to trust for registries.', helpValue: 'FILE', helpGroup: 'REGISTRY'}),
  username: Flags.string({description: 'Registry user name (with --password-stdin); offered to any registry that asks for credentials.', helpGroup: 'REGISTRY'}),
  'password-stdin': Flags.boolean({description: 'Read the registry password (or token) from standard input.', default: false, helpGroup: 'REGISTRY'}),
  concurrency: Flags.integer({description: 'Parallel registry transfers.', default: 8, min: 1, max: 64, helpGroup: 'REGISTRY'}),
}

export interface RegistryFlagValues {
  mirror?: string[]
  'insecure-registry'?: string[]
  'ca-file'?: string
  username?: string
  'password-stdin'?: boolean
  concurrency?: number
  debug?: boolean
}

/** `UPSTREAM=URL` pairs → mirrors map (upstream names normalised like references: index.docker.io → docker.io). */
export function parseMirrorFlags(values: string[] = []): Record<string, string[]> {
  const mirrors: Record<string, string[]> = {}
  for (const value of values) {
    const eq = value.indexOf('=')
    const upstream = eq > 0 ? value.slice(0, eq).trim().toLowerCase() : ''
    const url = eq > 0 ? value.slice(eq + 1).trim() : ''
    if (!upstream || !url || upstream.includes('/')) {
      throw new KubeferryError('INVALID_ARGUMENT', `invalid --mirror "${value}"`, {hint: 'use --mirror UPSTREAM=URL, e.g. --mirror registry.k8s.io=http://127.0.0.1:5000'})
    }
    const key = upstream === 'index.docker.io' || upstream === 'registry-1.docker.io' ? 'docker.io' : upstream
    ;(mirrors[key] ??= []).push(url)
  }
  return mirrors
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

/**
 * Client options from the parsed flags. `credentialsHost` limits --username/--password-stdin to one
 * registry (push passes its destination); without it they are offered to whichever registry asks.
 */
export async function clientOptionsFromFlags(
  flags: RegistryFlagValues,
  options: {log?: RegistryClientOptions['log']; credentialsHost?: string; readPassword?: () => Promise<string>} = {},
): Promise<RegistryClientOptions> {
  let explicit: {registry: string; username: string; password: string} | undefined
  if (flags['password-stdin'] && !flags.username) {
    throw new KubeferryError('INVALID_ARGUMENT', '--password-stdin needs --username', {hint: 'echo "$PASSWORD" | kubeferry … --username USER --password-stdin'})
  }
  if (flags.username) {
    if (!flags['password-stdin']) {
      throw new KubeferryError('INVALID_ARGUMENT', '--username needs --password-stdin (passwords are never taken on the command line)', {hint: 'echo "$PASSWORD" | kubeferry … --username USER --password-stdin'})
    }
    const password = await (options.readPassword ?? readStdin)()
    if (password === '') throw new KubeferryError('INVALID_ARGUMENT', '--password-stdin read an empty password', {hint: 'pipe the password into the command'})
    explicit = {registry: options.credentialsHost ?? '*', username: flags.username, password}
  }
  const log = options.log
  return {
    mirrors: parseMirrorFlags(flags.mirror),
    insecureRegistries: flags['insecure-registry'] ?? [],
    caFile: flags['ca-file'],
    credentials: defaultCredentialProvider({explicit, log}),
    log,
  }
}

/**
 * A logger for commands: warnings always on stderr, debug lines only with --debug (or KUBEFERRY_DEBUG=1), each with
 * the seconds since the process started, so that a slow registry or phase shows in the timeline. Never given secrets.
 */
export function stderrLog(debug: boolean): NonNullable<RegistryClientOptions['log']> {
  const on = debug || debugFromEnvironment()
  return (level, message) => {
    if (level === 'warn') process.stderr.write(`warning: ${message}\n`)
    else if (on) process.stderr.write(`${level}: [${(performance.now() / 1000).toFixed(3)}s] ${message}\n`)
  }
}
