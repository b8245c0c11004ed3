import {readFile} from 'node:fs/promises'
import {parseAllDocuments} from 'yaml'
import {KubeferryError} from '../oci/errors.js'
import type {KubeadmOverrides} from './kubeadm-images.js'

const SUPPORTED_API_VERSIONS = ['kubeadm.k8s.io/v1beta1', 'kubeadm.k8s.io/v1beta2', 'kubeadm.k8s.io/v1beta3', 'kubeadm.k8s.io/v1beta4']

export interface KubeadmConfig {
  apiVersion: string
  kubernetesVersion?: string
  overrides: KubeadmOverrides
  warnings: string[]
}

type Obj = Record<string, unknown>

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function invalid(file: string, message: string, hint = 'fix the kubeadm configuration file'): KubeferryError {
  return new KubeferryError('INVALID_ARGUMENT', `${file}: ${message}`, {hint})
}

function str(file: string, value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string') throw invalid(file, `${field} must be a string`)
  return value
}

/** Read a kubeadm config file (`--config`): the ClusterConfiguration among its YAML documents. */
export async function readKubeadmConfig(path: string): Promise<KubeadmConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error'
    throw new KubeferryError('IO', `cannot read kubeadm config ${path}: ${code}`, {hint: 'give a readable kubeadm configuration file to --config', cause: error})
  }
  return parseKubeadmConfig(text, path)
}

/**
 * Parse kubeadm YAML (multi-document: InitConfiguration, ClusterConfiguration, KubeletConfiguration…). Only the
 * ClusterConfiguration matters for images: kubernetesVersion, imageRepository, dns.imageRepository/imageTag,
 * etcd.local.imageRepository/imageTag, etcd.external, and v1beta4 dns.disabled/proxy.disabled.
 */
export function parseKubeadmConfig(text: string, file = 'kubeadm config'): KubeadmConfig {
  const docs = parseAllDocuments(text)
  const list = Array.isArray(docs) ? docs : [docs]
  const objects: Obj[] = []
  for (const doc of list) {
    if (doc.errors.length > 0) {
      const error = doc.errors[0]
      const line = error.linePos?.[0]?.line
      throw invalid(file, `invalid YAML${line ? ` at line ${line}` : ''}: ${error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`)
    }
    const value = doc.toJS() as unknown
    if (value === null || value === undefined) continue
    if (!isObj(value)) throw invalid(file, 'every YAML document must be a mapping with apiVersion and kind')
    objects.push(value)
  }

  const kubeadmDocs = objects.filter((o) => typeof o.apiVersion === 'string' && o.apiVersion.startsWith('kubeadm.k8s.io/'))
  for (const o of kubeadmDocs) {
    if (!SUPPORTED_API_VERSIONS.includes(o.apiVersion as string)) {
      throw invalid(file, `unsupported kubeadm API version ${String(o.apiVersion)} (kind ${String(o.kind)})`, `use one of ${SUPPORTED_API_VERSIONS.join(', ')}`)
    }
  }
  const clusters = kubeadmDocs.filter((o) => o.kind === 'ClusterConfiguration')
  if (clusters.length > 1) throw invalid(file, 'more than one ClusterConfiguration document')
  const cluster = clusters[0]
  if (!cluster) {
    if (kubeadmDocs.length === 0) throw invalid(file, 'no kubeadm.k8s.io document (expected a ClusterConfiguration)')
    return {apiVersion: String(kubeadmDocs[0].apiVersion), overrides: {}, warnings: [`${file} has no ClusterConfiguration: kubeadm defaults apply`]}
  }

  const apiVersion = cluster.apiVersion as string
  const warnings: string[] = []
  const dns = isObj(cluster.dns) ? cluster.dns : {}
  const etcd = isObj(cluster.etcd) ? cluster.etcd : {}
  const proxy = isObj(cluster.proxy) ? cluster.proxy : {}
  const local = isObj(etcd.local) ? etcd.local : undefined
  const external = isObj(etcd.external) ? etcd.external : undefined
  if (local && external) throw invalid(file, 'etcd.local and etcd.external are mutually exclusive')
  const dnsType = str(file, dns.type, 'dns.type')
  if (dnsType && dnsType !== 'CoreDNS') throw invalid(file, `dns.type ${dnsType} is not supported (kubeadm removed kube-dns in v1.21)`, 'use CoreDNS (drop dns.type)')

  const bool = (value: unknown, field: string): boolean | undefined => {
    if (value === undefined || value === null) return undefined
    if (typeof value !== 'boolean') throw invalid(file, `${field} must be true or false`)
    if (apiVersion !== 'kubeadm.k8s.io/v1beta4') warnings.push(`${file}: ${field} exists only in kubeadm.k8s.io/v1beta4; kubeadm would reject it under ${apiVersion}`)
    return value
  }

  const overrides: KubeadmOverrides = {
    imageRepository: str(file, cluster.imageRepository, 'imageRepository'),
    dnsImageRepository: str(file, dns.imageRepository, 'dns.imageRepository'),
    dnsImageTag: str(file, dns.imageTag, 'dns.imageTag'),
    etcdImageRepository: local ? str(file, local.imageRepository, 'etcd.local.imageRepository') : undefined,
    etcdImageTag: local ? str(file, local.imageTag, 'etcd.local.imageTag') : undefined,
    externalEtcd: external !== undefined,
    dnsDisabled: bool(dns.disabled, 'dns.disabled'),
    proxyDisabled: bool(proxy.disabled, 'proxy.disabled'),
  }
  for (const key of Object.keys(overrides) as Array<keyof KubeadmOverrides>) if (overrides[key] === undefined) delete overrides[key]
  const kubernetesVersion = str(file, cluster.kubernetesVersion, 'kubernetesVersion')
  return {apiVersion, ...(kubernetesVersion ? {kubernetesVersion} : {}), overrides, warnings}
}
