/** k3s and RKE2 run an embedded containerd; their ctr is `k3s ctr` or RKE2's own binary. */
import {RUNTIME_SOCKETS} from '../bundle/import-plan.js'
import {isExecutable, which} from './exec.js'

export const K3S_CONTAINERD_CONFIG = '/var/lib/rancher/k3s/agent/etc/containerd/config.toml'
export const RKE2_CONTAINERD_CONFIG = '/var/lib/rancher/rke2/agent/etc/containerd/config.toml'
export const K3S_CONTAINERD_ROOT = '/var/lib/rancher/k3s/agent/containerd'
export const RKE2_CONTAINERD_ROOT = '/var/lib/rancher/rke2/agent/containerd'

/** The argv prefix that runs ctr for `kind`, or undefined when that CLI is not installed. */
export function ctrCommand(kind: 'containerd' | 'nerdctl' | 'k3s' | 'rke2', env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  if (kind === 'k3s') {
    const k3s = which('k3s', env)
    return k3s ? [k3s, 'ctr'] : undefined
  }
  if (kind === 'rke2' && isExecutable(RUNTIME_SOCKETS.rke2Ctr)) return [RUNTIME_SOCKETS.rke2Ctr]
  const ctr = which('ctr', env)
  return ctr ? [ctr] : undefined
}
