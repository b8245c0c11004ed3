/** Start every peer in parallel under one run dir, and stop them again (by PID), unmounting and deleting the run dir. */
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import type {ImageSet} from '../images/builder.js'
import {pushImageSet} from '../images/seed.js'
import type {Peers, RegistryPeer, TokenRegistryPeer} from './peers.js'
import {killAllTasks, startContainerd, CTR_BIN} from './peers/containerd.js'
import {startDockerd, DOCKER_BIN} from './peers/dockerd.js'
import {startRegistry, REGISTRY_BIN} from './peers/registry.js'
import {run, stopDaemon, trackedProcesses, type ManagedProcess} from './proc.js'
import {startTokenServer, type RunningTokenServer} from './token-server.js'

export interface RunningPeers {
  runDir: string
  peers: Peers
  processes: ManagedProcess[]
  tokenServer?: RunningTokenServer
}

export interface StartOptions {
  log: (message: string) => void
  build: (dir: string) => Promise<ImageSet>
  /** Lifetime in seconds of the short-lived token user's tokens (default 3, env KUBEFERRY_TEST_TOKEN_EXPIRES_IN). */
  shortTokenSeconds?: number
}

const secret = (): string => randomBytes(12).toString('hex')

const TOOLS: Record<string, string> = {
  skopeo: '/usr/bin/skopeo',
  docker: DOCKER_BIN,
  ctr: CTR_BIN,
  'docker-registry': REGISTRY_BIN,
  containerd: '/usr/bin/containerd',
  dockerd: '/usr/sbin/dockerd',
  runc: '/usr/sbin/runc',
  htpasswd: '/usr/bin/htpasswd',
  openssl: '/usr/bin/openssl',
  shellcheck: '/usr/bin/shellcheck',
  dash: '/usr/bin/dash',
  busybox: '/bin/busybox',
}

function tail(text: string, lines = 8): string {
  return text.trim().split('\n').slice(-lines).join(' | ')
}

async function reason(error: unknown, logFile?: string): Promise<string> {
  let message = error instanceof Error ? error.message : String(error)
  if (logFile && existsSync(logFile)) {
    const log = await readFile(logFile, 'utf8').catch(() => '')
    if (log.trim()) message += ` — log tail: ${tail(log)}`
  }
  return message.replace(/\s+/g, ' ').slice(0, 1500)
}

export async function startPeers(runDir: string, options: StartOptions): Promise<RunningPeers> {
  const pidLog = join(runDir, 'pids')
  await writeFile(pidLog, `${process.pid} harness\n`)
  // KUBEFERRY_TEST_NO_PEERS=dockerd,containerd: don't start these (faster local runs; a failure with CI=true).
  const disabled = new Set((process.env.KUBEFERRY_TEST_NO_PEERS ?? '').split(',').map((s) => s.trim()).filter(Boolean))
  const unavailable: Record<string, string> = {}
  const tools: Record<string, string> = {}
  for (const [name, path] of Object.entries(TOOLS)) if (existsSync(path)) tools[name] = path
  const state: RunningPeers = {runDir, processes: [], peers: undefined as unknown as Peers}
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now()
    const value = await fn()
    options.log(`${what} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    return value
  }

  // Registries: open, htpasswd, token (+ token server with a fresh key and self-signed cert).
  const registries = (async () => {
    const open = startRegistry('registry-open', join(runDir, 'registry-open'), {kind: 'none'}, pidLog)
    const htUser = {username: `kf-basic-${secret().slice(0, 6)}`, password: secret()}
    const htpasswd = startRegistry('registry-htpasswd', join(runDir, 'registry-htpasswd'), {kind: 'htpasswd', ...htUser}, pidLog)
    const token = (async () => {
      const dir = join(runDir, 'registry-token')
      await mkdir(dir, {recursive: true})
      const keyFile = join(dir, 'token.key')
      const certFile = join(dir, 'token.crt')
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '3', '-subj', '/CN=kubeferry-test-token-issuer'])
      const user = {username: `kf-token-${secret().slice(0, 6)}`, password: secret()}
      const short = {username: `kf-short-${secret().slice(0, 6)}`, password: secret(), expiresIn: options.shortTokenSeconds ?? Number(process.env.KUBEFERRY_TEST_TOKEN_EXPIRES_IN ?? 3)}
      const identityToken = `kf-refresh-${secret()}`
      const service = 'kubeferry-test-registry'
      const issuer = 'kubeferry-test-token-issuer'
      const server = await startTokenServer({
        keyPem: await readFile(keyFile, 'utf8'),
        certPem: await readFile(certFile, 'utf8'),
        issuer,
        service,
        users: {
          [user.username]: {password: user.password, refreshToken: identityToken},
          [short.username]: {password: short.password, expiresIn: short.expiresIn},
        },
      })
      state.tokenServer = server
      const registry = await startRegistry('registry-token', dir, {kind: 'token', realm: server.realm, service, issuer, rootCertBundle: certFile}, pidLog)
      const peer: TokenRegistryPeer = {url: registry.url, host: registry.host, ...user, realm: server.realm, service, identityToken, shortLived: short, statsUrl: `${server.url}/stats`}
      return {peer, process: registry.process}
    })()
    const [o, h, t] = await Promise.all([open, htpasswd, token])
    state.processes.push(o.process, h.process, t.process)
    return {
      open: {url: o.url, host: o.host} satisfies RegistryPeer,
      htpasswd: {url: h.url, host: h.host, ...htUser} satisfies RegistryPeer,
      token: t.peer,
    }
  })()

  // containerd, then dockerd on top of it.
  const runtimes = (async () => {
    let containerd: Peers['containerd']
    let dockerd: Peers['dockerd']
    if (disabled.has('containerd')) unavailable.containerd = 'disabled by KUBEFERRY_TEST_NO_PEERS'
    else try {
      const c = await timed('containerd', () => startContainerd(join(runDir, 'containerd'), {pidLog}))
      state.processes.push(c.process)
      containerd = {address: c.address, root: c.root, state: c.state, namespace: 'k8s.io', snapshotter: c.snapshotter, pid: c.process.pid}
    } catch (error) {
      unavailable.containerd = await reason(error, join(runDir, 'containerd', 'containerd.log'))
    }
    if (disabled.has('dockerd')) unavailable.dockerd = 'disabled by KUBEFERRY_TEST_NO_PEERS'
    else try {
      const d = await timed('dockerd', () => startDockerd(join(runDir, 'docker'), {containerd: containerd?.address, pidLog}))
      state.processes.push(d.process)
      dockerd = {host: d.host, dataRoot: d.dataRoot, pid: d.process.pid}
    } catch (error) {
      unavailable.dockerd = await reason(error, join(runDir, 'docker', 'dockerd.log'))
    }
    return {containerd, dockerd}
  })()

  const images = timed('test images', () => options.build(join(runDir, 'images')))

  let regs: Peers['registries'] | undefined
  try {
    regs = await timed('registries', () => registries)
    const set = await images
    const r = regs
    await timed('image push (3 registries)', () => Promise.all([r.open, r.htpasswd, r.token].map((peer) => pushImageSet(set, peer, {fresh: true}))))
  } catch (error) {
    unavailable.registries = await reason(error)
  }
  // Whatever started before a failure is tracked too, so teardown stops it.
  for (const p of trackedProcesses()) if (!state.processes.includes(p)) state.processes.push(p)
  const set = await images.catch(() => undefined)
  const {containerd, dockerd} = await runtimes
  if (!tools.skopeo) unavailable.skopeo = 'skopeo is not installed (bash scripts/install-peers.sh)'

  state.peers = {
    runDir,
    registries: regs ?? (undefined as unknown as Peers['registries']),
    ...(containerd ? {containerd} : {}),
    ...(dockerd ? {dockerd} : {}),
    tools,
    unavailable,
    images: set?.images ?? [],
    imageDir: set?.dir ?? join(runDir, 'images'),
  }
  return state
}

/** Mount points under `dir`, deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  return info
    .split('\n')
    .map((line) => unescape(line.split(' ')[4] ?? ''))
    .filter((mount) => mount.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length)
}

/** PIDs of processes whose command line names `dir` (e.g. containerd shims of our containerd). */
async function processesNaming(dir: string): Promise<number[]> {
  const pids: number[] = []
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(dir + '/')) pids.push(Number(name))
  }
  return pids
}

export async function stopPeers(state: RunningPeers, options: {keepRunDir?: boolean} = {}): Promise<void> {
  // dockerd (stops its own containers) before the containerd it uses; then tasks tests left running in
  // containerd; registries in parallel.
  for (const p of state.processes.filter((proc) => proc.name === 'dockerd')) await stopDaemon(p, 10_000)
  if (state.peers?.containerd) await killAllTasks(state.peers.containerd.address).catch(() => 0)
  for (const p of state.processes.filter((proc) => proc.name === 'containerd')) await stopDaemon(p, 10_000)
  await Promise.all(state.processes.map((p) => stopDaemon(p)))
  await state.tokenServer?.close()
  // Leftovers that still name our run dir (shims of containers a test left behind): SIGKILL by PID.
  for (const pid of await processesNaming(state.runDir)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  for (const mount of await mountsUnder(state.runDir)) {
    await run('umount', [mount]).catch(async () => run('umount', ['-l', mount]).catch(() => undefined))
  }
  if (!options.keepRunDir) await rm(state.runDir, {recursive: true, force: true, maxRetries: 3})
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Clean up after harness runs that were killed (SIGKILL, machine stop): for each /tmp/kubeferry-test-*
 * whose harness PID is gone, SIGKILL the PIDs it recorded — only those whose command line still names
 * that run dir — then unmount and delete it. Runs of other live harnesses are left alone.
 */
export async function reapStaleRuns(log: (message: string) => void, parent = '/tmp'): Promise<void> {
  const names = await readdir(parent).catch(() => [] as string[])
  for (const name of names.filter((n) => n.startsWith('kubeferry-test-'))) {
    const dir = join(parent, name)
    const pids = await readFile(join(dir, 'pids'), 'utf8').catch(() => undefined)
    if (pids === undefined) continue
    const entries = pids.trim().split('\n').map((line) => {
      const [pid, ...rest] = line.split(' ')
      return {pid: Number(pid), name: rest.join(' ')}
    })
    const harness = entries.find((e) => e.name === 'harness')
    if (!harness || alive(harness.pid)) continue
    for (const entry of entries.filter((e) => e.name !== 'harness')) {
      const cmdline = await readFile(`/proc/${entry.pid}/cmdline`, 'utf8').catch(() => '')
      if (cmdline.includes(dir)) {
        try {
          process.kill(entry.pid, 'SIGKILL')
        } catch {
          // gone
        }
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
    for (const mount of await mountsUnder(dir)) await run('umount', ['-l', mount]).catch(() => undefined)
    await rm(dir, {recursive: true, force: true}).catch(() => undefined)
    log(`removed stale run dir ${dir} (its harness ${harness.pid} is gone)`)
  }
}
