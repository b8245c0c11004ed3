/**
 * `kubeferry config`: every configuration a node or cluster needs to use the internal registry (or a
 * `kubeferry serve`), from one context. Each target renders files that say in their first line where they go.
 */
import {KubeferryError} from '../oci/errors.js'
import {containerdFiles} from './containerd.js'
import {crioFiles} from './crio.js'
import {dockerFiles} from './docker.js'
import {hostsTomlFiles} from './hosts-toml.js'
import {rancherFiles} from './k3s.js'
import {kubeadmFiles} from './kubeadm.js'
import {secretFiles, type PullCredential} from './secret.js'
import {internalName, unmirrorable, type ConfigContext, type ConfigResult} from './context.js'

export * from './context.js'
export {hostsTomlFiles, mirrorUrl} from './hosts-toml.js'
export {containerdConfig, sandboxImage} from './containerd.js'
export {dockerConfigJson, DEFAULT_NAMESPACES, DEFAULT_SECRET_NAME, type PullCredential} from './secret.js'
export {kubeadmApiVersion} from './kubeadm.js'

export const CONFIG_TARGETS = ['containerd', 'containerd2', 'hosts', 'crio', 'docker', 'k3s', 'rke2', 'kubeadm', 'secret', 'all'] as const
export type ConfigTarget = (typeof CONFIG_TARGETS)[number]

export interface GenerateOptions {
  targets: ConfigTarget[]
  sandboxRef?: 'internal' | 'upstream'
  credential?: PullCredential
  secretName?: string
  namespaces?: string[]
}

/** The node-level fix for registries that need credentials (pull secrets never reach pause, static pods, kube-proxy). */
export function authWarning(ctx: ConfigContext): string {
  const host = ctx.destination.registry
  return [
    `${host} requires authentication, but the kubelet uses no pull secret for the sandbox (pause) image, static pods (etcd, kube-apiserver, …) or kube-proxy in kube-system,`,
    `  and a pull secret only matches images named ${host}/… (not upstream names resolved through a mirror). Give nodes their own credential:`,
    `  containerd 1.6/1.7: [plugins."io.containerd.grpc.v1.cri".registry.configs."${host}".auth] username/password in /etc/containerd/config.toml`,
    `  containerd 2.x: [plugins."io.containerd.cri.v1.images".registry.configs."${host}".auth]; CRI-O: pause_image_auth_file + global_auth_file;`,
    `  k3s/RKE2: configs."${host}".auth in registries.yaml; docker: docker login ${host} as root. (Commented templates are in the generated files.)`,
  ].join('\n')
}

function expand(targets: ConfigTarget[], ctx: ConfigContext, hasCredential: boolean): ConfigTarget[] {
  const set = new Set<ConfigTarget>()
  for (const t of targets) {
    if (t === 'all') {
      for (const x of ['containerd', 'crio', 'docker', 'k3s', 'rke2'] as const) set.add(x)
      if (!ctx.serve) set.add('kubeadm')
      if (hasCredential) set.add('secret')
    } else {
      set.add(t)
    }
  }
  if (set.has('containerd') || set.has('containerd2')) set.delete('hosts')
  return [...set]
}

export function generateConfig(ctx: ConfigContext, options: GenerateOptions): ConfigResult {
  if (options.targets.length === 0) throw new KubeferryError('INVALID_ARGUMENT', 'nothing to generate', {hint: `use --for with one of ${CONFIG_TARGETS.join(', ')}`})
  const sandboxRef = options.sandboxRef ?? 'internal'
  const out: ConfigResult = {files: [], warnings: [], notes: []}
  const add = (r: ConfigResult) => {
    out.files.push(...r.files)
    out.warnings.push(...r.warnings)
    out.notes.push(...r.notes)
  }
  for (const target of expand(options.targets, ctx, options.credential !== undefined)) {
    switch (target) {
      case 'containerd':
        add(containerdFiles(ctx, sandboxRef))
        break
      case 'containerd2':
        add(containerdFiles({...ctx, containerdMajor: 2}, sandboxRef))
        break
      case 'hosts':
        add({files: hostsTomlFiles(ctx), warnings: [], notes: []})
        break
      case 'crio':
        add(crioFiles(ctx, sandboxRef))
        break
      case 'docker':
        add(dockerFiles(ctx, sandboxRef))
        break
      case 'k3s':
      case 'rke2':
        add(rancherFiles(ctx, target, sandboxRef))
        break
      case 'kubeadm':
        add(kubeadmFiles(ctx))
        break
      case 'secret':
        add(secretFiles(ctx, options.credential, {name: options.secretName, namespaces: options.namespaces}))
        break
      default:
        break
    }
  }
  if (!ctx.serve) {
    const moved = unmirrorable(ctx)
    if (moved.length > 0) {
      out.warnings.push(`${moved.length} image(s) were renamed by --flatten/--map, so nodes asking by upstream name will not find them through the mirror: ${moved.slice(0, 3).map((i) => `${i.name} → ${internalName(ctx, i)}`).join(', ')}${moved.length > 3 ? ', …' : ''}; reference them by their internal names`)
    }
  }
  if (ctx.requiresAuth && !ctx.serve) out.warnings.push(authWarning(ctx))
  // Deduplicate files that two targets both render (hosts.toml for containerd and containerd2).
  const seen = new Map<string, number>()
  out.files = out.files.filter((f) => {
    const key = `${f.path}\n${f.content}`
    if (seen.has(key)) return false
    seen.set(key, 1)
    return true
  })
  const paths = new Map<string, string>()
  for (const f of out.files) {
    const other = paths.get(f.path)
    if (other !== undefined && other !== f.content) {
      throw new KubeferryError('INVALID_ARGUMENT', `two targets write different content to ${f.path}`, {hint: 'generate containerd and containerd2 separately (different config.toml formats)'})
    }
    paths.set(f.path, f.content)
  }
  return out
}
