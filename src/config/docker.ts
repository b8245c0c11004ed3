/**
 * Docker Engine: `daemon.json`. Docker can mirror ONLY Docker Hub (`registry-mirrors` applies to docker.io names
 * alone) and a mirror URL may not have a path (moby registry.ValidateMirror refuses one), so docker.io images are
 * found through the mirror only when they were pushed at the registry root (no prefix). Other registries'
 * images (registry.k8s.io/…) must be pulled by their internal names. `insecure-registries` for plain HTTP or
 * unverified TLS. With cri-dockerd the sandbox image is its `--pod-infra-container-image` flag.
 */
import {sandboxImage} from './containerd.js'
import {DOCKER_HUB} from '../oci/reference.js'
import type {ConfigContext, ConfigResult} from './context.js'

export function dockerFiles(ctx: ConfigContext, sandboxRef: 'internal' | 'upstream'): ConfigResult {
  const warnings: string[] = []
  const notes: string[] = []
  const daemon: Record<string, unknown> = {}
  const host = ctx.serve ? ctx.serve.host : ctx.destination.registry
  const scheme = ctx.serve ? (ctx.serve.url.startsWith('https://') ? 'https' : 'http') : ctx.plainHttp ? 'http' : 'https'
  const prefix = ctx.serve ? '' : ctx.destination.prefix
  if (prefix === '') {
    daemon['registry-mirrors'] = [`${scheme}://${host}`]
  } else if (ctx.upstreams.includes(DOCKER_HUB)) {
    warnings.push(`docker: registry-mirrors cannot carry a path, so docker.io images pushed under /${prefix} cannot be mirrored; pull them by their internal names (${host}/${prefix}/library/…) or push to the registry root`)
  }
  const others = ctx.upstreams.filter((u) => u !== DOCKER_HUB)
  if (others.length > 0) {
    warnings.push(`docker: can only mirror docker.io; images of ${others.join(', ')} must be pulled and referenced by their internal names (e.g. ${sandboxImage(ctx, 'internal')})`)
  }
  if (scheme === 'http' || (!ctx.serve && ctx.skipVerify)) daemon['insecure-registries'] = [host]
  if (ctx.caPem && !ctx.serve) notes.push(`docker: copy the registry CA to /etc/docker/certs.d/${host}/ca.crt`)
  notes.push(`docker with cri-dockerd: start cri-dockerd with --pod-infra-container-image=${sandboxImage(ctx, sandboxRef === 'upstream' && prefix === '' ? 'upstream' : 'internal')}`)
  if (ctx.requiresAuth && !ctx.serve) notes.push(`docker: run \`docker login ${host}\` as root on each node (pause and static pods get no pull secret)`)
  const path = '/etc/docker/daemon.json'
  const comment = `${path}: merge these keys into the docker daemon configuration, then restart docker (JSON has no comments)`
  return {files: [{path, comment, format: 'json', content: `${JSON.stringify(daemon, null, 2)}\n`}], warnings, notes}
}
