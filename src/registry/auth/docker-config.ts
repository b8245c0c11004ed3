import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

/** The parts of docker's config.json (and containers' auth.json, same shape) that carry credentials. */
export interface DockerConfigFile {
  path: string
  auths: Record<string, {auth?: string; username?: string; password?: string; identitytoken?: string}>
  credHelpers: Record<string, string>
  credsStore?: string
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG && env.DOCKER_CONFIG !== '' ? env.DOCKER_CONFIG : join(env.HOME ?? homedir(), '.docker')
  return join(dir, 'config.json')
}

/** containers-auth.json locations in the order podman/skopeo read them. */
export function containersAuthPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.REGISTRY_AUTH_FILE) return [env.REGISTRY_AUTH_FILE]
  const paths: string[] = []
  if (env.XDG_RUNTIME_DIR) paths.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'))
  const configHome = env.XDG_CONFIG_HOME ?? join(env.HOME ?? homedir(), '.config')
  paths.push(join(configHome, 'containers', 'auth.json'))
  return paths
}

/** Read one config file; a missing file is `undefined`, an unreadable or malformed one is reported through `warn`. */
export async function readDockerConfig(path: string, warn: (message: string) => void): Promise<DockerConfigFile | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'ENOTDIR') warn(`cannot read ${path} (${code}); ignoring it`)
    return undefined
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    warn(`${path} is not valid JSON; ignoring it`)
    return undefined
  }
  if (!json || typeof json !== 'object') return undefined
  const obj = json as Record<string, unknown>
  const auths = obj.auths && typeof obj.auths === 'object' ? (obj.auths as DockerConfigFile['auths']) : {}
  const credHelpers = obj.credHelpers && typeof obj.credHelpers === 'object' ? (obj.credHelpers as Record<string, string>) : {}
  const credsStore = typeof obj.credsStore === 'string' && obj.credsStore !== '' ? obj.credsStore : undefined
  return {path, auths, credHelpers, credsStore}
}

/**
 * The keys a registry may be stored under: `host`, `https://host`, `http://host`, `https://host/v1/`…
 * Docker Hub uses `https://index.docker.io/v1/`.
 */
export function registryKeys(registry: string): string[] {
  const host = registry.toLowerCase()
  if (host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io') {
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1', 'https://registry-1.docker.io']
  }
  return [host, `https://${host}`, `http://${host}`, `https://${host}/v1/`, `https://${host}/v2/`, `http://${host}/v1/`]
}

/** Find the entry for `registry` in a map keyed the way docker/podman key it (URL or host form). */
export function findEntry<T>(map: Record<string, T>, registry: string): T | undefined {
  const keys = new Set(registryKeys(registry))
  for (const key of keys) if (Object.hasOwn(map, key)) return map[key]
  // Any other spelling: compare the host part.
  const wanted = registryKeys(registry)[0]
  for (const [key, value] of Object.entries(map)) {
    const host = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase()
    if (host === wanted || registryKeys(host)[0] === wanted) return value
  }
  return undefined
}

/** The server URL to give credential helpers (docker uses this exact string for Docker Hub). */
export function helperServerUrl(registry: string): string {
  return registryKeys(registry)[0]
}
