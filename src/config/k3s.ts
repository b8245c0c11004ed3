/**
 * k3s and RKE2: `registries.yaml` (their embedded containerd's mirrors), with `rewrite` to add the prefix
 * (k3s/RKE2 registries.yaml: `rewrite` maps a regex over the repository to a replacement), `configs` for TLS,
 * and the pause image through a config.yaml.d drop-in (`pause-image`). Both ship their own system images
 * (rancher/mirrored-…) as air-gap tarballs; these mirrors serve kubeadm-style and extra images from the bundle.
 */
import {stringify} from 'yaml'
import {sandboxImage} from './containerd.js'
import {registryUrl, type ConfigContext, type ConfigResult} from './context.js'

export function rancherFiles(ctx: ConfigContext, flavour: 'k3s' | 'rke2', sandboxRef: 'internal' | 'upstream'): ConfigResult {
  const endpoint = ctx.serve ? ctx.serve.url : registryUrl(ctx)
  const host = ctx.serve ? ctx.serve.host : ctx.destination.registry
  const prefix = ctx.serve ? '' : ctx.destination.prefix
  const mirrors: Record<string, unknown> = {}
  for (const upstream of ctx.upstreams) {
    mirrors[upstream] = {endpoint: [endpoint], ...(prefix ? {rewrite: {'^(.*)$': `${prefix}/$1`}} : {})}
  }
  const doc: Record<string, unknown> = {mirrors}
  const tls: Record<string, unknown> = {}
  if (!ctx.serve && ctx.caPem) tls.ca_file = `/etc/rancher/${flavour}/registry-ca.crt`
  if (!ctx.serve && ctx.skipVerify) tls.insecure_skip_verify = true
  if (Object.keys(tls).length > 0) doc.configs = {[host]: {tls}}
  const path = `/etc/rancher/${flavour}/registries.yaml`
  const comment = `${path}: ${flavour} mirrors for ${ctx.upstreams.join(', ')} → ${endpoint}${prefix ? `/${prefix}` : ''}; restart ${flavour}`
  let yaml = `# ${comment}\n${stringify(doc)}`
  if (ctx.requiresAuth && !ctx.serve) {
    yaml += `# ${host} needs credentials (the sandbox image and system pods get no pull secret); add, root-only:\n# configs:\n#   ${JSON.stringify(host)}:\n#     auth:\n#       username: ${JSON.stringify(ctx.username ?? 'USER')}\n#       password: PASSWORD\n`
  }
  const files: ConfigResult['files'] = [{path, comment, format: 'yaml', content: yaml}]
  const dropIn = `/etc/rancher/${flavour}/config.yaml.d/50-kubeferry.yaml`
  const dropComment = `${dropIn}: ${flavour} sandbox image; restart ${flavour}`
  files.push({path: dropIn, comment: dropComment, format: 'yaml', content: `# ${dropComment}\n${stringify({'pause-image': sandboxImage(ctx, sandboxRef)})}`})
  if (!ctx.serve && ctx.caPem) {
    const ca = `/etc/rancher/${flavour}/registry-ca.crt`
    files.push({path: ca, comment: `${ca}: the CA of ${host}, referenced by registries.yaml`, format: 'pem', content: ctx.caPem})
  }
  return {files, warnings: [], notes: []}
}
