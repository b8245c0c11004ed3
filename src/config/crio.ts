/**
 * CRI-O: the pause image in a crio.conf.d drop-in, and containers-registries.conf(5) mirror entries (v2 format,
 * a registries.conf.d drop-in). A mirror `location` may carry a namespace: with `prefix = "registry.k8s.io"` and
 * mirror `registry.corp:5000/k8s`, `registry.k8s.io/pause` is pulled as `registry.corp:5000/k8s/pause`.
 * Node-level credentials: `pause_image_auth_file` (sandbox) and `global_auth_file` (everything pulled without a
 * pull secret) in `[crio.image]`, both docker config.json-format files.
 */
import {sandboxImage} from './containerd.js'
import type {ConfigContext, ConfigResult, GeneratedFile} from './context.js'

const q = (s: string) => JSON.stringify(s)

export function crioFiles(ctx: ConfigContext, sandboxRef: 'internal' | 'upstream'): ConfigResult {
  const pause = sandboxImage(ctx, sandboxRef)
  const confPath = '/etc/crio/crio.conf.d/50-kubeferry.conf'
  const confComment = `${confPath}: CRI-O drop-in for the pause image; restart crio after adding it`
  const conf = [`# ${confComment}`, '[crio.image]', `pause_image = ${q(pause)}`]
  if (ctx.requiresAuth && !ctx.serve) {
    conf.push(
      `# ${ctx.destination.registry} needs credentials; the kubelet gives none for the pause image or static pods.`,
      '# Put a docker config.json-format file for it on the node (root-only) and uncomment:',
      '# pause_image_auth_file = "/etc/crio/registry-auth.json"',
      '# global_auth_file = "/etc/crio/registry-auth.json"',
    )
  }
  conf.push('')
  const files: GeneratedFile[] = [{path: confPath, comment: confComment, format: 'toml', content: conf.join('\n')}]

  const mirror = ctx.serve ? ctx.serve.host : `${ctx.destination.registry}${ctx.destination.prefix ? `/${ctx.destination.prefix}` : ''}`
  const insecure = ctx.serve ? !ctx.serve.url.startsWith('https://') : ctx.plainHttp || ctx.skipVerify
  const regPath = '/etc/containers/registries.conf.d/50-kubeferry.conf'
  const regComment = `${regPath}: CRI-O/podman pull ${ctx.upstreams.join(', ')} images from ${mirror}; restart crio`
  const reg = [`# ${regComment}`]
  for (const upstream of ctx.upstreams) {
    reg.push('', '[[registry]]', `prefix = ${q(upstream)}`, `location = ${q(upstream)}`, '', '[[registry.mirror]]', `location = ${q(mirror)}`)
    if (insecure) reg.push('insecure = true')
  }
  if (!ctx.serve && (ctx.plainHttp || ctx.skipVerify)) {
    reg.push('', '[[registry]]', `location = ${q(ctx.destination.registry)}`, 'insecure = true')
  }
  reg.push('')
  files.push({path: regPath, comment: regComment, format: 'toml', content: reg.join('\n')})
  if (ctx.caPem && !ctx.serve) {
    const ca = `/etc/containers/certs.d/${ctx.destination.registry}/ca.crt`
    files.push({path: ca, comment: `${ca}: the CA of ${ctx.destination.registry} for CRI-O/podman`, format: 'pem', content: ctx.caPem})
  }
  return {files, warnings: [], notes: [`CRI-O: pause_image = ${pause}`]}
}
