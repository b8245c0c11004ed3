import {readFileSync} from 'node:fs'
import {rootCertificates} from 'node:tls'
import {KubeferryError} from '../errors.js'

/**
 * Which hosts may be reached without verified TLS. Like docker, loopback registries (localhost,
 * 127.0.0.0/8, ::1) are treated as insecure by default so plain-http local registries just work;
 * every other host needs an explicit --insecure-registry.
 */
export class InsecurePolicy {
  private readonly hosts: Set<string>

  constructor(insecureRegistries: string[] = []) {
    this.hosts = new Set(insecureRegistries.map((h) => normaliseHost(h)))
  }

  /** `host` is host[:port] as in a reference. */
  allows(host: string): boolean {
    const h = normaliseHost(host)
    if (this.hosts.has(h)) return true
    const bare = hostWithoutPort(h)
    if (this.hosts.has(bare)) return true
    return isLoopback(bare)
  }
}

function normaliseHost(host: string): string {
  return host.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase()
}

export function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1)
  const colon = host.lastIndexOf(':')
  return colon > -1 && host.indexOf(':') === colon ? host.slice(0, colon) : host
}

export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '')
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

/** CA bundle: the system roots plus the operator's --ca-file (which must be readable PEM). */
export function loadCa(caFile: string | undefined): string[] | undefined {
  if (!caFile) return undefined
  let pem: string
  try {
    pem = readFileSync(caFile, 'utf8')
  } catch (error) {
    throw new KubeferryError('INVALID_ARGUMENT', `cannot read --ca-file ${caFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {hint: 'give the path of a PEM file with the CA certificate(s) of your registry'})
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new KubeferryError('INVALID_ARGUMENT', `--ca-file ${caFile} holds no PEM certificate`, {hint: 'give a PEM file (-----BEGIN CERTIFICATE-----)'})
  }
  return [...rootCertificates, pem]
}
