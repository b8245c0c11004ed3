/**
 * Preflight: the sandbox (pause) image the runtime will ask for, read from its config — containerd 1.x
 * `sandbox_image`, 2.x `[plugins."io.containerd.cri.v1.images".pinned_images] sandbox`, CRI-O `pause_image`
 * (crio.conf then crio.conf.d/*.conf, later wins), the kubelet's deprecated --pod-infra-container-image — and a
 * warning with the exact line to change when the bundle does not hold it. Same wording as install.sh.
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {RUNTIME_SOCKETS} from '../bundle/import-plan.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {DEFAULT_CONTAINERD_CONFIG} from './containerd.js'
import type {RuntimeKind} from './detect.js'
import {run, which} from './exec.js'
import {K3S_CONTAINERD_CONFIG, RKE2_CONTAINERD_CONFIG} from './k3s.js'

export interface SandboxSetting {
  value: string
  /** 1-based line in the file. */
  line: number
  /** 1 = containerd 1.x sandbox_image, 2 = containerd 2.x pinned_images.sandbox, crio = pause_image */
  style: '1' | '2' | 'crio'
}

export interface PreflightWarning {
  runtime: string
  configured: string
  source: string
  fix: string
}

const valueOf = (line: string): string =>
  line
    .replace(/^[^=]*=\s*/, '')
    .replace(/["']/g, '')
    .replace(/\s*(#.*)?$/, '')

/** The sandbox setting of a containerd config text (the first one, as containerd reads one value). */
export function containerdSandbox(text: string): SandboxSetting | undefined {
  let section = ''
  const lines = text.split('\n')
  for (const [i, line] of lines.entries()) {
    if (/^\s*\[/.test(line)) section = line
    if (/^\s*sandbox_image\s*=/.test(line)) return {value: valueOf(line), line: i + 1, style: '1'}
    if (/^\s*sandbox\s*=/.test(line) && section.includes('pinned_images')) return {value: valueOf(line), line: i + 1, style: '2'}
  }
  return undefined
}

export function crioPauseImage(text: string): SandboxSetting | undefined {
  let found: SandboxSetting | undefined
  for (const [i, line] of text.split('\n').entries()) {
    if (/^\s*pause_image\s*=/.test(line)) found = {value: valueOf(line), line: i + 1, style: 'crio'}
  }
  return found
}

export function normalizeImageName(name: string): string {
  try {
    return formatReference(parseReference(name))
  } catch {
    return name
  }
}

export interface PreflightOptions {
  kind: RuntimeKind
  /** --config: the runtime's config file. */
  configFile?: string
  /** Every name the bundle holds for the node's platform. */
  bundleNames: string[]
  /** What to suggest (kubeadm's pause first). */
  suggested?: string
  env?: NodeJS.ProcessEnv
  kubeletFlagsFile?: string
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

export async function preflight(options: PreflightOptions): Promise<PreflightWarning[]> {
  const suggested = options.suggested
  if (!suggested) return []
  const held = new Set(options.bundleNames)
  const holds = (name: string): boolean => held.has(normalizeImageName(name))
  const warnings: PreflightWarning[] = []
  const {kind} = options
  if (kind === 'containerd' || kind === 'nerdctl' || kind === 'k3s' || kind === 'rke2') {
    const file = options.configFile ?? (kind === 'k3s' ? K3S_CONTAINERD_CONFIG : kind === 'rke2' ? RKE2_CONTAINERD_CONFIG : DEFAULT_CONTAINERD_CONFIG)
    const text = read(file)
    let setting = text === undefined ? undefined : containerdSandbox(text)
    let source = setting ? `${file} line ${setting.line}` : ''
    if (!setting && kind === 'containerd' && which('containerd', options.env)) {
      const dump = await run(['containerd', '--config', text === undefined ? '/dev/null' : file, 'config', 'dump'], {env: options.env})
      setting = dump.code === 0 ? containerdSandbox(dump.stdout) : undefined
      source = `containerd's built-in default; ${file} does not set it`
    }
    if (setting && !holds(setting.value)) {
      const fix =
        kind === 'k3s'
          ? `start k3s with --pause-image ${suggested}`
          : setting.style === '2'
            ? `in ${file} under [plugins."io.containerd.cri.v1.images".pinned_images] set: sandbox = "${suggested}" (then restart containerd)`
            : `in ${file} under [plugins."io.containerd.grpc.v1.cri"] set: sandbox_image = "${suggested}" (then restart containerd)`
      warnings.push({runtime: kind, configured: setting.value, source, fix})
    }
  } else if (kind === 'cri-o') {
    const files = options.configFile ? [options.configFile] : crioFiles()
    let found: {setting: SandboxSetting; file: string} | undefined
    for (const file of files) {
      const text = read(file)
      const setting = text === undefined ? undefined : crioPauseImage(text)
      if (setting) found = {setting, file}
    }
    if (found && !holds(found.setting.value)) {
      warnings.push({
        runtime: 'cri-o',
        configured: found.setting.value,
        source: `${found.file} line ${found.setting.line}`,
        fix: `in ${found.file} under [crio.image] set: pause_image = "${suggested}" (then restart crio)`,
      })
    }
  }
  const flags = read(options.kubeletFlagsFile ?? RUNTIME_SOCKETS.kubeletFlags)
  const kubelet = flags ? /--pod-infra-container-image[= ]([^ "\n]+)/.exec(flags)?.[1] : undefined
  if (kubelet && !holds(kubelet)) {
    warnings.push({
      runtime: 'kubelet',
      configured: kubelet,
      source: `--pod-infra-container-image in ${RUNTIME_SOCKETS.kubeletFlags}`,
      fix: `set --pod-infra-container-image=${suggested} there (or drop the deprecated flag and set the runtime's sandbox image)`,
    })
  }
  return warnings
}

function crioFiles(): string[] {
  const dir = '/etc/crio/crio.conf.d'
  const extra = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.conf')).sort().map((f) => join(dir, f)) : []
  return ['/etc/crio/crio.conf', ...extra]
}

/** The two warning lines, exactly as install.sh prints them (without the `kubeferry: warning: ` prefix). */
export function warningLines(w: PreflightWarning): string[] {
  return [
    `${w.runtime} is configured to use sandbox image ${w.configured} (${w.source}), which this bundle does not hold: pods will fail with 'failed to get sandbox image' on an offline node.`,
    `  fix: ${w.fix}`,
  ]
}
