/**
 * A private podman/containers-storage for one test, touching nothing global: storage.conf (vfs, own graphroot and
 * runroot) and containers.conf (cgroupfs, file events, own tmp dirs, CNI backend with its own config dir — the
 * netavark default would create /etc/containers/networks and /run/containers/networks) named by
 * CONTAINERS_STORAGE_CONF / CONTAINERS_CONF, which podman, skopeo, install.sh and `kubeferry load` all honour.
 * No network is needed: everything is read from local archives and layouts.
 */
import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

export interface Run {
  code: number
  stdout: string
  stderr: string
}

export function exec(file: string, args: string[], env: NodeJS.ProcessEnv, timeout = 120_000): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, {env, timeout, maxBuffer: 32 * 1024 * 1024}, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      done({code, stdout: String(stdout), stderr: String(stderr)})
    })
  })
}

export interface PodmanStore {
  dir: string
  graphroot: string
  runroot: string
  /** process.env plus the two config files and TMPDIR; pass `path` to replace PATH. */
  env(path?: string): NodeJS.ProcessEnv
  /** skopeo's explicit containers-storage destination for this store, e.g. `containers-storage:[vfs@/g+/r]NAME`. */
  destination(name: string): string
  podman(...args: string[]): Promise<Run>
  images(): Promise<PodmanImage[]>
}

/** One row of `podman images --digests --format json` (podman 4.3 field names). */
export interface PodmanImage {
  Id: string
  Names?: string[]
  Digest: string
  RepoDigests?: string[]
}

export async function makeStore(parent: string, name: string): Promise<PodmanStore> {
  const dir = await mkdtemp(join(parent, `${name}-`))
  const graphroot = join(dir, 'storage')
  const runroot = join(dir, 'run')
  const tmp = join(dir, 'tmp')
  await mkdir(tmp)
  const storageConf = join(dir, 'storage.conf')
  const containersConf = join(dir, 'containers.conf')
  await writeFile(storageConf, `[storage]\ndriver = "vfs"\ngraphroot = "${graphroot}"\nrunroot = "${runroot}"\n`)
  await writeFile(
    containersConf,
    [
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${join(dir, 'events.log')}"`,
      `tmp_dir = "${join(dir, 'libpod-tmp')}"`,
      `image_copy_tmp_dir = "${tmp}"`,
      '[network]',
      'network_backend = "cni"',
      `network_config_dir = "${join(dir, 'networks')}"`,
      '',
    ].join('\n'),
  )
  const env = (path?: string): NodeJS.ProcessEnv => ({
    ...process.env,
    ...(path ? {PATH: path} : {}),
    CONTAINERS_STORAGE_CONF: storageConf,
    CONTAINERS_CONF: containersConf,
    TMPDIR: tmp,
  })
  const store: PodmanStore = {
    dir,
    graphroot,
    runroot,
    env,
    destination: (ref) => `containers-storage:[vfs@${graphroot}+${runroot}]${ref}`,
    podman: (...args) => exec('podman', args, env()),
    images: async () => {
      const r = await store.podman('images', '--digests', '--format', 'json')
      if (r.code !== 0) throw new Error(`podman images failed: ${r.stderr}`)
      return JSON.parse(r.stdout || '[]') as PodmanImage[]
    },
  }
  return store
}

const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

/** A PATH (one directory of symlinks) with every system command except `hidden`, e.g. podman without skopeo. */
export async function pathWithout(parent: string, ...hidden: string[]): Promise<string> {
  const dir = await mkdtemp(join(parent, `path-without-${hidden.join('-')}-`))
  const seen = new Set<string>(hidden)
  for (const source of SYSTEM_PATH) {
    if (!existsSync(source)) continue
    for (const entry of await readdir(source)) {
      if (seen.has(entry)) continue
      seen.add(entry)
      await symlink(join(source, entry), join(dir, entry))
    }
  }
  return dir
}
