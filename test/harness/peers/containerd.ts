/** A containerd of our own: own config, root, state and socket under the run dir; the CRI plugin is off. */
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {deathNote, run, startDaemon, waitFor, type ManagedProcess} from '../proc.js'

export const CONTAINERD_BIN = '/usr/bin/containerd'
export const CTR_BIN = '/usr/bin/ctr'

export interface StartedContainerd {
  address: string
  root: string
  state: string
  configFile: string
  /** overlayfs when containerd reports that plugin ok here, else native. */
  snapshotter: 'overlayfs' | 'native'
  process: ManagedProcess
}

export interface ContainerdOptions {
  /** Extra TOML appended to the generated config (e.g. a CRI section for a node harness). */
  extraToml?: string
  /** Replace the default `disabled_plugins` list. */
  disabledPlugins?: string[]
  pidLog?: string
}

export async function startContainerd(dir: string, options: ContainerdOptions = {}): Promise<StartedContainerd> {
  const root = join(dir, 'root')
  const state = join(dir, 'state')
  await mkdir(root, {recursive: true})
  await mkdir(state, {recursive: true})
  const address = join(dir, 'containerd.sock')
  const configFile = join(dir, 'config.toml')
  const disabled = options.disabledPlugins ?? ['io.containerd.grpc.v1.cri']
  const toml = [
    'version = 2',
    `root = ${JSON.stringify(root)}`,
    `state = ${JSON.stringify(state)}`,
    `disabled_plugins = ${JSON.stringify(disabled)}`,
    '',
    '[grpc]',
    `  address = ${JSON.stringify(address)}`,
    '',
    '[ttrpc]',
    `  address = ${JSON.stringify(address + '.ttrpc')}`,
    '',
    '[debug]',
    '  address = ""',
    '  level = "warn"',
    '',
    '[metrics]',
    '  address = ""',
    '',
    options.extraToml ?? '',
  ].join('\n')
  await writeFile(configFile, toml)
  const proc = startDaemon('containerd', CONTAINERD_BIN, ['--config', configFile], {logFile: join(dir, 'containerd.log'), pidLog: options.pidLog})
  await waitFor(
    `containerd on ${address}`,
    async () => {
      await run(CTR_BIN, ['--address', address, 'version'], {timeoutMs: 5000})
      return true
    },
    20_000,
    () => deathNote(proc),
  )
  const {stdout} = await run(CTR_BIN, ['--address', address, 'plugins', 'ls'])
  const overlay = stdout.split('\n').find((line) => /io\.containerd\.snapshotter\.v1\s+overlayfs\s/.test(line))
  const snapshotter = overlay && /\sok\s*$/.test(overlay) ? 'overlayfs' : 'native'
  return {address, root, state, configFile, snapshotter, process: proc}
}

/**
 * Kill and delete every task (running container) in every namespace of this containerd, so no shim or
 * container outlives the peer. Errors are ignored: this is teardown.
 */
export async function killAllTasks(address: string): Promise<number> {
  let killed = 0
  const ctr = async (args: string[]): Promise<string> => (await run(CTR_BIN, ['--address', address, ...args], {timeoutMs: 10_000})).stdout
  const namespaces = (await ctr(['namespaces', 'ls', '-q']).catch(() => '')).split('\n').filter(Boolean)
  for (const ns of namespaces) {
    const tasks = (await ctr(['-n', ns, 'tasks', 'ls', '-q']).catch(() => '')).split('\n').filter(Boolean)
    for (const id of tasks) {
      await ctr(['-n', ns, 'tasks', 'kill', '--all', '-s', 'SIGKILL', id]).catch(() => '')
      await ctr(['-n', ns, 'tasks', 'delete', '--force', id]).catch(() => '')
      killed++
    }
  }
  return killed
}
