/**
 * containerd's CRI settings for an air-gapped node: the sandbox (pause) image and `config_path` for hosts.toml.
 *  - 1.x (config version 2): `[plugins."io.containerd.grpc.v1.cri"] sandbox_image`, `…cri".registry] config_path`;
 *  - 2.x (config version 3): `[plugins."io.containerd.cri.v1.images".pinned_images] sandbox`,
 *    `[plugins."io.containerd.cri.v1.images".registry] config_path`.
 *
 * Registry credentials: the kubelet passes pull secrets only for pod images, never for the sandbox image, and static
 * pods (the control plane) and kube-proxy's DaemonSet in kube-system use none. containerd's CRI looks up
 * `registry.configs."<host>".auth` by the host it actually talks to — the mirror — when the kubelet gave no
 * credentials (pkg/cri image_pull.go, 1.6/1.7; documented for 2.0 as well, deprecated but kept until a secret
 * plugin exists). hosts.toml has no credential field. So that block is what makes the sandbox pull work.
 */
import {hostsTomlFiles} from './hosts-toml.js'
import {CERTS_D, internalName, type ConfigContext, type ConfigResult, type GeneratedFile} from './context.js'

const q = (s: string) => JSON.stringify(s)

/** The sandbox image reference nodes are configured with (internal name, or upstream through the mirror). */
export function sandboxImage(ctx: ConfigContext, sandboxRef: 'internal' | 'upstream' = 'internal'): string {
  if (ctx.serve || sandboxRef === 'upstream') return ctx.pause.name
  return internalName(ctx, ctx.pause)
}

function authBlock(ctx: ConfigContext, plugin: string): string[] {
  const host = ctx.destination.registry
  return [
    '',
    `# ${host} needs credentials and the kubelet gives none for the sandbox image, static pods or kube-proxy:`,
    '# node-level credentials for the CRI (uncomment, fill in, keep this file readable by root only):',
    `# [plugins.${q(plugin)}.registry.configs.${q(host)}.auth]`,
    `#   username = ${q(ctx.username ?? 'USER')}`,
    '#   password = "PASSWORD"',
  ]
}

/** Where each major version keeps the two settings (its plugin, and the table + key of the sandbox image). */
const LAYOUTS = {
  1: {configVersion: 2, plugin: 'io.containerd.grpc.v1.cri', sandboxTable: '', sandboxKey: 'sandbox_image'},
  2: {configVersion: 3, plugin: 'io.containerd.cri.v1.images', sandboxTable: '.pinned_images', sandboxKey: 'sandbox'},
} as const

export function containerdConfig(ctx: ConfigContext, sandboxRef: 'internal' | 'upstream' = 'internal'): GeneratedFile {
  const path = '/etc/containerd/config.toml'
  const {configVersion, plugin, sandboxTable, sandboxKey} = LAYOUTS[ctx.containerdMajor]
  const comment = `merge into ${path} (containerd ${ctx.containerdMajor}.x, config version ${configVersion}), then restart containerd`
  const lines = [
    `# ${comment}`,
    `version = ${configVersion}`,
    '',
    `[plugins.${q(plugin)}${sandboxTable}]`,
    `  ${sandboxKey} = ${q(sandboxImage(ctx, sandboxRef))}`,
    '',
    `[plugins.${q(plugin)}.registry]`,
    `  config_path = ${q(CERTS_D)}`,
    ...(ctx.requiresAuth && !ctx.serve ? authBlock(ctx, plugin) : []),
    '',
  ]
  return {path, comment, format: 'toml', content: lines.join('\n')}
}

export function containerdFiles(ctx: ConfigContext, sandboxRef: 'internal' | 'upstream'): ConfigResult {
  const notes = [`containerd: the sandbox image is ${sandboxImage(ctx, sandboxRef)}; hosts.toml files send ${ctx.upstreams.join(', ')} pulls to ${ctx.serve ? ctx.serve.url : ctx.destination.registry}`]
  return {files: [containerdConfig(ctx, sandboxRef), ...hostsTomlFiles(ctx)], warnings: [], notes}
}
