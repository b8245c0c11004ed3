import {KubeferryError} from './errors.js'
import type {Platform} from './types.js'

const ARCH_ALIASES: Record<string, string> = {x86_64: 'amd64', x86: '386', i386: '386', aarch64: 'arm64', armhf: 'arm', armel: 'arm'}

/** Parse `os/arch[/variant]` (e.g. `linux/arm64/v8`). */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new KubeferryError('INVALID_ARGUMENT', `invalid platform "${text}": expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`, {
      hint: 'give --platform as os/arch[/variant] in lowercase, e.g. --platform linux/arm64',
    })
  }
  const [os, rawArch, variant] = parts
  return normalizePlatform({os, architecture: rawArch, ...(variant ? {variant} : {})})
}

export function normalizePlatform(p: Platform): Platform {
  const architecture = ARCH_ALIASES[p.architecture] ?? p.architecture
  let variant = p.variant
  if (architecture === 'arm64' && variant === 'v8') variant = undefined
  if (architecture === 'amd64' && variant === 'v1') variant = undefined
  return {os: p.os, architecture, ...(variant ? {variant} : {})}
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/')
}

/** A single-platform image's platform, from its config's `os`, `architecture` and `variant` (linux/amd64 when unsaid). */
export function configPlatform(config: {os?: unknown; architecture?: unknown; variant?: unknown}): Platform {
  const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined)
  const variant = text(config.variant)
  return normalizePlatform({os: text(config.os) ?? 'linux', architecture: text(config.architecture) ?? 'amd64', ...(variant ? {variant} : {})})
}

/** True when `candidate` (from an index) satisfies `wanted` (arm64 ≡ arm64/v8; no wanted variant = any). */
export function platformMatches(wanted: Platform, candidate: Platform | undefined): boolean {
  if (!candidate) return false
  const w = normalizePlatform(wanted)
  const c = normalizePlatform(candidate)
  if (w.os !== c.os || w.architecture !== c.architecture) return false
  if (w.variant === undefined) return true
  return w.variant === c.variant
}

/** The platform of this machine in OCI terms. */
export function hostPlatform(): Platform {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch
  return normalizePlatform({os: process.platform === 'win32' ? 'windows' : process.platform, architecture: arch})
}
