/**
 * A `kubernetes.io/dockerconfigjson` pull Secret per namespace and the strategic-merge patch that adds it to the
 * namespace's `default` ServiceAccount (imagePullSecrets merge by name, so other secrets stay). This is the only
 * generated file allowed to hold the credential; it is read from a file or stdin, never from a flag.
 */
import {stringify} from 'yaml'
import {KubeferryError} from '../oci/errors.js'
import type {ConfigContext, ConfigResult} from './context.js'

export interface PullCredential {
  username: string
  password: string
}

export const DEFAULT_SECRET_NAME = 'kubeferry-registry'
export const DEFAULT_NAMESPACES = ['default', 'kube-system']

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

export function dockerConfigJson(registry: string, cred: PullCredential): string {
  const auth = Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64')
  return JSON.stringify({auths: {[registry]: {username: cred.username, password: cred.password, auth}}})
}

export function secretFiles(ctx: ConfigContext, cred: PullCredential | undefined, options: {name?: string; namespaces?: string[]} = {}): ConfigResult {
  if (!cred) {
    throw new KubeferryError('INVALID_ARGUMENT', 'the pull Secret needs a credential', {hint: 'give --username with --password-stdin or --password-file FILE (never on the command line)'})
  }
  const name = options.name ?? DEFAULT_SECRET_NAME
  const namespaces = options.namespaces?.length ? options.namespaces : DEFAULT_NAMESPACES
  for (const n of [name, ...namespaces]) {
    if (!NAME_RE.test(n) || n.length > 63) throw new KubeferryError('INVALID_ARGUMENT', `invalid Kubernetes name "${n}"`, {hint: 'lowercase letters, digits and -, at most 63 characters'})
  }
  const registry = ctx.serve ? ctx.serve.host : ctx.destination.registry
  const data = Buffer.from(dockerConfigJson(registry, cred), 'utf8').toString('base64')
  const docs = namespaces.map((namespace) =>
    stringify({apiVersion: 'v1', kind: 'Secret', metadata: {name, namespace}, type: 'kubernetes.io/dockerconfigjson', data: {'.dockerconfigjson': data}}),
  )
  const secretPath = 'kubeferry-pull-secret.yaml'
  const secretComment = `${secretPath}: \`kubectl apply -f ${secretPath}\` (holds the registry credential: keep it out of git)`
  const patchPath = 'kubeferry-serviceaccount-patch.yaml'
  const patchComment = `${patchPath}: ${namespaces.map((n) => `kubectl -n ${n} patch serviceaccount default --patch-file ${patchPath}`).join('; ')}`
  return {
    files: [
      {path: secretPath, comment: secretComment, format: 'yaml', content: `# ${secretComment}\n${docs.join('---\n')}`, secret: true},
      {path: patchPath, comment: patchComment, format: 'yaml', content: `# ${patchComment}\n${stringify({imagePullSecrets: [{name}]})}`},
    ],
    warnings: [],
    notes: [`pull secret ${name} for ${registry} in namespace(s) ${namespaces.join(', ')}; pods name images ${registry}/… (a pull secret is matched by the image's registry, not by a mirror)`],
  }
}
