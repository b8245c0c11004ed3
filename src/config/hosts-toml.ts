/**
 * containerd's registry host files (`config_path`, containerd >= 1.5; ctr --hosts-dir): one
 * `certs.d/<upstream host>/hosts.toml` per upstream registry, sending pulls to the internal registry.
 *
 * Path semantics (containerd remotes/docker/config/hosts.go): a host URL's path is normally followed by `/v2`
 * (`https://r/k8s` → `https://r/k8s/v2`, wrong for a prefix); with `override_path = true` the path IS the API root,
 * so a prefix mirror is `[host."https://r/v2/k8s"]` + `override_path = true` and `registry.k8s.io/pause` is fetched
 * from `https://r/v2/k8s/pause/manifests/…`. Without a prefix the plain host URL is used.
 */
import {CERTS_D, registryUrl, upstreamServer, type ConfigContext, type GeneratedFile} from './context.js'

const q = (s: string) => JSON.stringify(s)

/** Directory containerd looks in for a registry host (host[:port] as written). */
export function hostsDir(host: string): string {
  return `${CERTS_D}/${host}`
}

function caPath(ctx: ConfigContext): string | undefined {
  return ctx.caPem ? `${hostsDir(ctx.destination.registry)}/ca.crt` : undefined
}

function hostBlock(ctx: ConfigContext, url: string, overridePath: boolean): string[] {
  const lines = [`[host.${q(url)}]`, '  capabilities = ["pull", "resolve"]']
  if (overridePath) lines.push('  override_path = true')
  const ca = caPath(ctx)
  if (ca && !ctx.serve) lines.push(`  ca = ${q(ca)}`)
  if (ctx.skipVerify && !ctx.serve) lines.push('  skip_verify = true')
  return lines
}

/** The mirror URL for upstream images: the internal registry (+ `/v2/<prefix>`), or a kubeferry serve. */
export function mirrorUrl(ctx: ConfigContext): {url: string; overridePath: boolean} {
  if (ctx.serve) return {url: ctx.serve.url, overridePath: false}
  const base = registryUrl(ctx)
  return ctx.destination.prefix ? {url: `${base}/v2/${ctx.destination.prefix}`, overridePath: true} : {url: base, overridePath: false}
}

export function hostsTomlFiles(ctx: ConfigContext): GeneratedFile[] {
  const files: GeneratedFile[] = []
  const {url, overridePath} = mirrorUrl(ctx)
  const target = ctx.serve ? `kubeferry serve at ${ctx.serve.url}` : `${ctx.destination.registry}${ctx.destination.prefix ? `/${ctx.destination.prefix}` : ''}`
  for (const upstream of ctx.upstreams) {
    const path = `${hostsDir(upstream)}/hosts.toml`
    const comment = `${path}: containerd pulls ${upstream} images from ${target} (config_path = "${CERTS_D}"; read at each pull, no restart needed)`
    const lines = [`# ${comment}`, `server = ${q(upstreamServer(upstream))}`, '', ...hostBlock(ctx, url, overridePath), '']
    files.push({path, comment, format: 'toml', content: lines.join('\n')})
  }
  // The internal registry's own entry: only needed to reach it by its own name over http, with a CA or unverified.
  if (!ctx.serve && (ctx.plainHttp || ctx.caPem || ctx.skipVerify)) {
    const host = ctx.destination.registry
    const path = `${hostsDir(host)}/hosts.toml`
    const comment = `${path}: how containerd reaches ${host} itself (images named ${host}/…, e.g. the sandbox image)`
    const lines = [`# ${comment}`, `server = ${q(registryUrl(ctx))}`, '', ...hostBlock(ctx, registryUrl(ctx), false), '']
    files.push({path, comment, format: 'toml', content: lines.join('\n')})
  }
  const ca = caPath(ctx)
  if (ca && ctx.caPem && !ctx.serve) {
    files.push({path: ca, comment: `${ca}: the CA of ${ctx.destination.registry}, referenced by the hosts.toml files`, format: 'pem', content: ctx.caPem})
  }
  return files
}
