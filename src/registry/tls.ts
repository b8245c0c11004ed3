import {readFileSync} from 'node:fs'
import {rootCertificates} from 'node:tls'
import {KubeferryError} from '../oci/errors.js'

/**
 * Which hosts may be reached without verified TLS. Hosts named with --insecure-registry may use
 * plain http or TLS without verification. Loopback registries (localhost, 127.0.0.0/8, ::1) may use
 * plain http by default, as docker allows; if a loopback registry does speak TLS its certificate is
 * still verified unless it is named too.
 */
export class InsecurePolicy {
  private readonly hosts: Set<string>

  constructor(insecureRegistries: string[] = []) {
    this.hosts = new Set(insecureRegistries.map((h) => normaliseHost(h)))
  }

  /** Named with --insecure-registry (host[:port] as in a reference, or the bare host for any port). */
  named(host: string): boolean {
    const h = normaliseHost(host)
    return this.hosts.has(h) || this.hosts.has(hostWithoutPort(h))
  }

  /** May be spoken to over plain http. */
  allows(host: string): boolean {
    return this.named(host) || isLoopback(hostWithoutPort(normaliseHost(host)))
  }

  /** May skip TLS certificate verification. */
  skipsVerify(host: string): boolean {
    return this.named(host)
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
