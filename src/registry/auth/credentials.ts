import {runCredentialHelper} from './cred-helper.js'
import {containersAuthPaths, dockerConfigPath, findEntry, helperServerUrl, readDockerConfig, type DockerConfigFile} from './docker-config.js'

import type {Credential} from './credential.js'

export type {Credential} from './credential.js'

export interface CredentialProvider {
  get(registryHost: string): Promise<Credential | undefined>
}

export type LogFn = (level: 'debug' | 'info' | 'warn', message: string) => void

export interface DefaultCredentialOptions {
  /** From --username/--password-stdin; `registry` '*' offers them to every registry that asks. */
  explicit?: {registry: string; username: string; password: string}
  log?: LogFn
  env?: NodeJS.ProcessEnv
}

export const anonymousCredentials: CredentialProvider = {get: async () => undefined}

/** A provider with fixed credentials per host (tests and programmatic use). */
export function staticCredentialProvider(map: Record<string, Credential>): CredentialProvider {
  return {get: async (host) => findEntry(map, host)}
}

function decodeAuth(entry: {auth?: string; username?: string; password?: string; identitytoken?: string}): Credential | undefined {
  if (entry.identitytoken) return {identityToken: entry.identitytoken}
  if (entry.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8')
    const colon = text.indexOf(':')
    if (colon > 0) return {username: text.slice(0, colon), password: text.slice(colon + 1)}
  }
  if (entry.username && entry.password) return {username: entry.username, password: entry.password}
  return undefined
}

/**
 * Credentials the way docker and podman find them, first match wins:
 * explicit flags → docker config `credHelpers[host]` → `auths[host]` → `credsStore` →
 * containers auth.json (REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json).
 * A missing or failing helper is a warning and the registry is then tried anonymously.
 */
export function defaultCredentialProvider(options: DefaultCredentialOptions = {}): CredentialProvider {
  const env = options.env ?? process.env
  const log: LogFn = options.log ?? (() => {})
  const warned = new Set<string>()
  const warn = (message: string) => {
    if (!warned.has(message)) {
      warned.add(message)
      log('warn', message)
    }
  }
  let files: Promise<{docker?: DockerConfigFile; containers: DockerConfigFile[]}> | undefined
  const load = () =>
    (files ??= (async () => {
      const docker = await readDockerConfig(dockerConfigPath(env), warn)
      const containers: DockerConfigFile[] = []
      for (const path of containersAuthPaths(env)) {
        const file = await readDockerConfig(path, warn)
        if (file) containers.push(file)
      }
      return {docker, containers}
    })())
  const cache = new Map<string, Promise<Credential | undefined>>()

  const viaHelper = async (helper: string, host: string): Promise<Credential | undefined> => {
    const result = await runCredentialHelper(helper, helperServerUrl(host), env)
    if (result.kind === 'found') {
      log('debug', `credentials for ${host} from docker-credential-${helper}`)
      return result.credential
    }
    if (result.kind === 'failed') warn(`credential helper ${result.reason}; trying ${host} anonymously`)
    return undefined
  }

  const lookup = async (host: string): Promise<Credential | undefined> => {
    const explicit = options.explicit
    if (explicit && (explicit.registry === '*' || findEntry({[explicit.registry]: true}, host))) {
      return {username: explicit.username, password: explicit.password}
    }
    const {docker, containers} = await load()
    if (docker) {
      const helper = findEntry(docker.credHelpers, host)
      if (helper) return viaHelper(helper, host)
      const entry = findEntry(docker.auths, host)
      const decoded = entry ? decodeAuth(entry) : undefined
      if (decoded) {
        log('debug', `credentials for ${host} from ${docker.path}`)
        return decoded
      }
      if (docker.credsStore) {
        const fromStore = await viaHelper(docker.credsStore, host)
        if (fromStore) return fromStore
      }
    }
    for (const file of containers) {
      const entry = findEntry(file.auths, host)
      const decoded = entry ? decodeAuth(entry) : undefined
      if (decoded) {
        log('debug', `credentials for ${host} from ${file.path}`)
        return decoded
      }
    }
    return undefined
  }

  return {
    get(host: string) {
      const key = host.toLowerCase()
      let found = cache.get(key)
      if (!found) {
        found = lookup(key)
        cache.set(key, found)
      }
      return found
    },
  }
}
