/**
 * install.sh is real shell, kept beside this module as consecutive parts (src/bundle/install/NN-*.sh, copied to
 * dist/src/bundle/install/ by the build) so that no file is a monolith: the template is their concatenation in
 * INSTALL_PARTS order, byte for byte. POSIX sh only (dash, busybox ash), shellcheck clean as a whole and once rendered. This module fills its
 * per-bundle data in: @@VERSION@@ @@COUNT@@ @@PLATFORMS@@, and @@PLAN@@ (the import plan's data lines, see
 * import-plan.ts, then the bundle's entry lines, see contract.ts). Nothing else of the text changes.
 */
import {readFileSync} from 'node:fs'
import {KubeferryError} from '../oci/errors.js'
import {canonicalPlatform, renderPlanData} from './import-plan.js'
import type {BundleMetadata} from './layout.js'

const templates = new Map<string, string>()

/** install.sh's parts in script order (each starts at a `# --- section` line of the script but the first). */
export const INSTALL_PARTS = [
  '10-options.sh',
  '12-bundle-files.sh',
  '14-platform-scratch.sh',
  '15-signatures.sh',
  '20-bundle-checks.sh',
  '30-runtime-preflight.sh',
  '35-delta-check.sh',
  '40-state-and-checks.sh',
  '50-import.sh',
  '60-names-pins-summary.sh',
] as const

/**
 * Parts only a delta bundle's install.sh has (create --base): a full bundle's script is without them, so its bytes
 * are what they were before deltas existed.
 */
export const DELTA_ONLY_PARTS: ReadonlySet<string> = new Set(['35-delta-check.sh'])

/**
 * The install.sh template (every part for a delta bundle's script, the others for a full bundle's), read once. The
 * one place that loads it (a single-file build makes it a text import).
 */
export function installScriptTemplate(kind: 'full' | 'delta' = 'delta'): string {
  let template = templates.get(kind)
  if (template === undefined) {
    const parts = INSTALL_PARTS.filter((part) => kind === 'delta' || !DELTA_ONLY_PARTS.has(part))
    template = parts.map((part) => readFileSync(new URL(`./install/${part}`, import.meta.url), 'utf8')).join('')
    templates.set(kind, template)
  }
  return template
}

/** One `entry|<path>|<size>|<sha256 or ->` line of install.sh: an entry the script expects in the tar. */
export interface ListedEntry {
  path: string
  size: number
  /** sha256 hex of the content, for the entries the script checks before any runtime reads the tar. */
  sha256?: string
}

/**
 * The script for `meta`. `listing(selfSize)` gives every entry of the bundle, the script's own included with size
 * `selfSize`: the script states its own size, and only that number's digits change the length, so the size settles
 * in a step or two.
 */
export function fillInstallScript(meta: BundleMetadata, listing: (selfSize: number) => ListedEntry[]): string {
  const version = String(meta.tool?.version ?? 'unknown')
  if (!/^[A-Za-z0-9._+-]+$/.test(version)) throw new KubeferryError('BUNDLE_INVALID', `unsafe tool version in bundle metadata: ${JSON.stringify(version)}`)
  const platforms = meta.platforms.map(canonicalPlatform).join(' ')
  const plan = renderPlanData(meta).join('\n')
  const text = installScriptTemplate(meta.delta ? 'delta' : 'full')
  const render = (selfSize: number): string => {
    const entries = listing(selfSize).map((e) => ['entry', e.path, String(e.size), e.sha256 ?? '-'].join('|'))
    for (const line of entries) {
      if (!/^[A-Za-z0-9|/._-]+$/.test(line)) throw new KubeferryError('BUNDLE_INVALID', `unsafe character in a bundle entry name: ${JSON.stringify(line)}`)
    }
    return text
      .replace('@@PLAN@@', () => `${plan}\n${entries.join('\n')}`)
      .replaceAll('@@VERSION@@', version)
      .replaceAll('@@COUNT@@', String(meta.images.length))
      .replaceAll('@@PLATFORMS@@', platforms)
  }
  let size = 0
  for (let i = 0; i < 8; i++) {
    const script = render(size)
    const length = Buffer.byteLength(script)
    if (length === size) return script
    size = length
  }
  throw new KubeferryError('INTERNAL', 'install.sh: its own size does not settle')
}
