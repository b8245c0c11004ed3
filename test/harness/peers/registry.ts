/** docker-registry (CNCF distribution 2.8) peers: open, htpasswd and token auth, each on its own port and storage. */
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {request} from 'undici'
import {deathNote, freePort, run, startDaemon, stopDaemon, waitFor, type ManagedProcess} from '../proc.js'

export const REGISTRY_BIN = '/usr/bin/docker-registry'

export type RegistryAuth =
  | {kind: 'none'}
  | {kind: 'htpasswd'; username: string; password: string}
  | {kind: 'token'; realm: string; service: string; issuer: string; rootCertBundle: string}

export interface StartedRegistry {
  url: string
  host: string
  dir: string
  process: ManagedProcess
}

function configYaml(dir: string, port: number, auth: RegistryAuth, htpasswdFile: string): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(join(dir, 'data'))}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: kubeferry-test-${port}`,
    // A stopped registry finishes the requests in flight: without a drain, SIGTERM cuts distribution 2.8
    // mid-write and can leave an empty link file that it then answers with HTTP 500 after a restart.
    '  draintimeout: 1s',
  ]
  if (auth.kind === 'htpasswd') {
    lines.push('auth:', '  htpasswd:', '    realm: kubeferry-test', `    path: ${JSON.stringify(htpasswdFile)}`)
  } else if (auth.kind === 'token') {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${JSON.stringify(auth.realm)}`,
      `    service: ${JSON.stringify(auth.service)}`,
      `    issuer: ${JSON.stringify(auth.issuer)}`,
      `    rootcertbundle: ${JSON.stringify(auth.rootCertBundle)}`,
    )
  }
  return lines.join('\n') + '\n'
}

/** Start one docker-registry with its config.yml and storage under `dir`; resolves once /v2/ answers. */
export async function startRegistry(name: string, dir: string, auth: RegistryAuth, pidLog?: string): Promise<StartedRegistry> {
  await mkdir(join(dir, 'data'), {recursive: true})
  const htpasswdFile = join(dir, 'htpasswd')
  if (auth.kind === 'htpasswd') {
    const {stdout} = await run('htpasswd', ['-Bbn', auth.username, auth.password])
    await writeFile(htpasswdFile, stdout.trim() + '\n', {mode: 0o600})
  }
  // A port found free may be taken by someone else before the registry binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const configFile = join(dir, 'config.yml')
    await writeFile(configFile, configYaml(dir, port, auth, htpasswdFile))
    const proc = startDaemon(name, REGISTRY_BIN, ['serve', configFile], {logFile: join(dir, 'registry.log'), pidLog})
    const url = `http://127.0.0.1:${port}`
    try {
      await waitFor(
        `${name} registry on ${url}`,
        async () => {
          const res = await request(`${url}/v2/`, {method: 'GET'})
          await res.body.dump()
          return res.statusCode === 200 || res.statusCode === 401
        },
        15_000,
        () => deathNote(proc),
      )
      return {url, host: `127.0.0.1:${port}`, dir, process: proc}
    } catch (error) {
      await stopDaemon(proc, 1000)
      if (attempt >= 3) throw error
    }
  }
}
