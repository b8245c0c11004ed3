/**
 * Which runtime to import into, in the same order and with the same messages as install.sh's detect_runtime:
 * explicit --runtime/--address, the kubelet's container-runtime-endpoint, k3s/RKE2's socket, containerd's socket,
 * CRI-O's socket, docker (DOCKER_HOST or its socket), podman, nerdctl.
 */
import {existsSync, readFileSync, statSync} from 'node:fs'
import {EXIT, RUNTIME_SOCKETS, type RuntimeName} from '../bundle/import-plan.js'
import {KubeferryError} from '../oci/errors.js'
import {lastLine, run, which} from './exec.js'
import {ctrCommand} from './k3s.js'

export type RuntimeKind = Exclude<RuntimeName, 'auto'>

export interface RuntimeTarget {
  kind: RuntimeKind
  /** containerd socket path (containerd family) or DOCKER_HOST (docker). */
  address?: string
  namespace: string
  /** argv prefix for ctr (containerd family). */
  ctr?: string[]
  env: NodeJS.ProcessEnv
  description: string
}

export interface DetectOptions {
  runtime?: RuntimeName | 'crio'
  address?: string
  namespace?: string
  env?: NodeJS.ProcessEnv
}

const noRuntime = (message: string, hint?: string): KubeferryError => new KubeferryError('RUNTIME', message, {hint, exitCode: EXIT.noRuntime})

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket()
  } catch {
    return false
  }
}

/** The kubelet's --container-runtime-endpoint (kubeadm flags file or KubeletConfiguration), when present. */
export function kubeletEndpoint(): string | undefined {
  for (const file of [RUNTIME_SOCKETS.kubeletFlags, RUNTIME_SOCKETS.kubeletConfig]) {
    if (!existsSync(file)) continue
    try {
      const text = readFileSync(file, 'utf8')
      const match = /container-runtime-endpoint[=:] *"?([^" \n]+)/.exec(text) ?? /containerRuntimeEndpoint: *"?([^" \n]+)/.exec(text)
      if (match) return match[1]
    } catch {
      // unreadable: ignore, as the script does
    }
  }
  return undefined
}

function autoDetect(options: DetectOptions, env: NodeJS.ProcessEnv): {kind: RuntimeKind; address?: string} {
  const looked = ['--address/CONTAINERD_ADDRESS']
  if (options.address || env.CONTAINERD_ADDRESS) return {kind: 'containerd', address: options.address ?? env.CONTAINERD_ADDRESS}
  const endpoint = kubeletEndpoint() ?? ''
  if (endpoint.includes('cri-dockerd')) return {kind: 'docker'}
  if (endpoint.includes('crio')) return {kind: 'cri-o'}
  if (endpoint.includes('k3s')) return {kind: 'k3s'}
  if (endpoint.includes('containerd')) return {kind: 'containerd', address: endpoint.replace(/^unix:\/\//, '')}
  looked.push("kubelet's container-runtime-endpoint")
  if (isSocket(RUNTIME_SOCKETS.k3s)) {
    if (which('k3s', env)) return {kind: 'k3s'}
    if (ctrCommand('rke2', env)?.[0] === RUNTIME_SOCKETS.rke2Ctr) return {kind: 'rke2'}
    if (which('ctr', env)) return {kind: 'containerd', address: RUNTIME_SOCKETS.k3s}
  }
  looked.push(`${RUNTIME_SOCKETS.k3s} (k3s/rke2)`)
  if (isSocket(RUNTIME_SOCKETS.containerd) && which('ctr', env)) return {kind: 'containerd'}
  looked.push(`${RUNTIME_SOCKETS.containerd} with ctr`)
  if (isSocket(RUNTIME_SOCKETS.crio) && (which('skopeo', env) || which('podman', env))) return {kind: 'cri-o'}
  looked.push(`${RUNTIME_SOCKETS.crio} with skopeo or podman`)
  if (which('docker', env) && (env.DOCKER_HOST || isSocket(RUNTIME_SOCKETS.docker))) return {kind: 'docker'}
  looked.push(`docker (DOCKER_HOST or ${RUNTIME_SOCKETS.docker})`)
  if (which('podman', env)) return {kind: 'podman'}
  if (which('nerdctl', env) && which('ctr', env)) return {kind: 'nerdctl'}
  throw noRuntime(`no container runtime found; looked for: ${looked.join(', ')}, podman, nerdctl`, 'pass --runtime NAME (and --address SOCKET)')
}

/** Resolve and check the runtime (its CLI is there and its daemon answers). */
export async function resolveRuntime(options: DetectOptions = {}): Promise<RuntimeTarget> {
  const env = {...(options.env ?? process.env)}
  const namespace = options.namespace ?? env.CONTAINERD_NAMESPACE ?? 'k8s.io'
  let kind: RuntimeKind
  let address = options.address
  const requested = options.runtime === 'crio' ? 'cri-o' : (options.runtime ?? 'auto')
  if (requested === 'auto') {
    const found = autoDetect(options, env)
    kind = found.kind
    address = found.address ?? address
  } else {
    kind = requested
    if (!address && (kind === 'containerd' || kind === 'nerdctl')) address = env.CONTAINERD_ADDRESS
  }
  if (kind === 'containerd' || kind === 'nerdctl' || kind === 'k3s' || kind === 'rke2') {
    address = (address ?? (kind === 'k3s' || kind === 'rke2' ? RUNTIME_SOCKETS.k3s : RUNTIME_SOCKETS.containerd)).replace(/^unix:\/\//, '')
    const ctr = ctrCommand(kind, env)
    if (!ctr) throw noRuntime(kind === 'k3s' ? 'runtime k3s: the k3s binary is not on PATH' : `runtime ${kind}: ctr (containerd's CLI) is not on PATH`)
    if (kind === 'nerdctl' && !which('nerdctl', env)) throw noRuntime('runtime nerdctl: nerdctl is not on PATH')
    if (!isSocket(address)) throw noRuntime(`runtime ${kind}: no containerd socket at ${address}; is containerd running? (--address SOCKET)`)
    const version = await run([...ctr, '--address', address, '--namespace', namespace, 'version'], {env})
    if (version.code !== 0) throw noRuntime(`runtime ${kind}: cannot reach containerd at ${address}: ${lastLine(version.stderr)}`)
    return {kind, address, namespace, ctr, env, description: `${kind} (${address}, namespace ${namespace})`}
  }
  if (kind === 'docker') {
    if (!which('docker', env)) throw noRuntime('runtime docker: the docker CLI is not on PATH')
    if (options.address) env.DOCKER_HOST = options.address.includes('://') ? options.address : `unix://${options.address}`
    const version = await run(['docker', 'version'], {env})
    if (version.code !== 0) throw noRuntime(`runtime docker: cannot reach the docker daemon${env.DOCKER_HOST ? ` at ${env.DOCKER_HOST}` : ''}: ${lastLine(version.stderr)}`)
    return {kind, address: env.DOCKER_HOST, namespace, env, description: `docker${env.DOCKER_HOST ? ` (${env.DOCKER_HOST})` : ''}`}
  }
  if (kind === 'podman' && !which('podman', env)) throw noRuntime('runtime podman: podman is not on PATH')
  if (kind === 'cri-o' && !which('skopeo', env) && !which('podman', env)) throw noRuntime('runtime cri-o: skopeo or podman is needed to write into containers-storage')
  return {kind, namespace, env, description: kind}
}
