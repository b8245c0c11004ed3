/** A dockerd of our own (docker.io 20.10): own socket, data root and exec root, vfs, no networking changes. */
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {deathNote, run, startDaemon, waitFor, type ManagedProcess} from '../proc.js'

export const DOCKERD_BIN = '/usr/sbin/dockerd'
/** The Debian docker client. /usr/local/bin/docker on this machine is an unrelated client: never use it. */
export const DOCKER_BIN = '/usr/bin/docker'

export interface StartedDockerd {
  /** unix:///…/docker.sock */
  host: string
  dataRoot: string
  process: ManagedProcess
}

export interface DockerdOptions {
  /** Socket of the containerd to use (dockerd starts its own when omitted). */
  containerd?: string
  /** daemon.json contents (e.g. registry-mirrors); default `{}` so /etc/docker/daemon.json is not read. */
  daemonJson?: Record<string, unknown>
  pidLog?: string
}

export async function startDockerd(dir: string, options: DockerdOptions = {}): Promise<StartedDockerd> {
  const dataRoot = join(dir, 'data')
  const execRoot = join(dir, 'exec')
  await mkdir(dataRoot, {recursive: true})
  await mkdir(execRoot, {recursive: true})
  const socket = join(dir, 'docker.sock')
  const host = `unix://${socket}`
  const configFile = join(dir, 'daemon.json')
  await writeFile(configFile, JSON.stringify(options.daemonJson ?? {}, null, 2))
  const args = [
    '--host', host,
    '--config-file', configFile,
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', join(dir, 'docker.pid'),
    '--iptables=false',
    '--ip6tables=false',
    '--ip-masq=false',
    '--bridge=none',
    '--storage-driver=vfs',
    '--userland-proxy=false',
    ...(options.containerd ? ['--containerd', options.containerd] : []),
  ]
  // DOCKER_HOST etc. of the caller must not leak into the daemon.
  const env = {PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir}
  const proc = startDaemon('dockerd', DOCKERD_BIN, args, {logFile: join(dir, 'dockerd.log'), env, pidLog: options.pidLog})
  await waitFor(
    `dockerd on ${host}`,
    async () => {
      await run(DOCKER_BIN, ['-H', host, 'version', '--format', '{{.Server.Version}}'], {timeoutMs: 5000, env: {PATH: env.PATH, HOME: dir, DOCKER_CONFIG: join(dir, 'client')}})
      return true
    },
    30_000,
    () => deathNote(proc),
  )
  return {host, dataRoot, process: proc}
}
