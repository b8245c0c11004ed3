#!/usr/bin/env node
/**
 * Generates src/kube/data/kubeadm-releases.json and src/kube/data/runtime-pause.json from git directories of
 * public repositories (read with `git show`, never copied):
 *
 *   node scripts/gen-kube-data.mjs [--minikube DIR] [--containerd DIR --crio DIR --cri-dockerd DIR] [--out DIR]
 *
 * kubeadm facts: kubernetes/minikube keeps pkg/minikube/constants/constants_kubeadm_images.go, written by
 * hack/update/kubeadm_constants: for every kubernetes/kubernetes GitHub release it downloads that release's kubeadm
 * binary and records `kubeadm config images list --kubernetes-version <v>` (registry prefix stripped). That gives the
 * etcd, CoreDNS (tag and path) and pause of each release as printed by the real kubeadm. What the minikube table drops
 * (the registry prefix and the print order) changed at known releases of kubeadm itself; those few rules are below,
 * each with the kubeadm change that made it, and are applied here so the JSON holds one finished row per release.
 *
 * Runtime facts: the default sandbox (pause) image of every containerd (from 1.4), CRI-O and cri-dockerd release
 * tag, read from each tag's default configuration source file, plus per series the setting that overrides it (and
 * for containerd the config version `containerd config default` writes and whether the CRI reads hosts.toml via
 * config_path); every value is stored with the TAG:PATH:LINE it was read from.
 */
import {execFileSync} from 'node:child_process'
import {writeFileSync, mkdirSync} from 'node:fs'
import {join, resolve, dirname} from 'node:path'
import {fileURLToPath} from 'node:url'

const args = parseArgs(process.argv.slice(2))
const here = dirname(fileURLToPath(import.meta.url))
const outDir = resolve(args.out ?? join(here, '..', 'src', 'kube', 'data'))
const OLDEST = [1, 16, 0]

/**
 * kubeadm's default image repository per release. kubeadm v1.25.0 switched `DefaultImageRepository` from
 * k8s.gcr.io to registry.k8s.io (kubernetes PR 109938 + 110343); the change was backported (kubeadm-scoped) in
 * PRs 113392 (1.22), 113393 (1.23) and 113395 (1.24) and shipped in the December 2022 patch releases.
 */
const REGISTRY_SWITCH = {22: 17, 23: 15, 24: 9}
const NEW_REGISTRY_FROM_MINOR = 25
/**
 * Print order of `kubeadm config images list`. Until v1.28 GetControlPlaneImages appended pause, etcd, then DNS;
 * kubernetes PR 114534 ("kubeadm: Support skipping addons image pull", merged for v1.29.0) moved the DNS image
 * before pause and etcd.
 */
const DNS_FIRST_FROM_MINOR = 29
/**
 * kubeadm v1.21.0 and v1.21.1 named the image coredns/coredns under every repository, custom ones too (a regression
 * fixed in v1.21.2 by kubernetes PR 102502, "kubeadm: use subpath for coredns only for default repository").
 */
const COREDNS_NESTED_UNDER_ANY_REPOSITORY = ['1.21.0', '1.21.1']

function parseArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) usage(`unexpected argument ${a}`)
    const value = argv[i + 1]
    if (value === undefined) usage(`${a} needs a value`)
    out[a.slice(2)] = value
    i++
  }
  if (!out.minikube && !out.containerd) usage('give --minikube DIR (kubeadm table) and/or --containerd, --crio, --cri-dockerd (runtime tables)')
  return out
}

function usage(message) {
  process.stderr.write(`gen-kube-data: ${message}\nusage: node scripts/gen-kube-data.mjs [--minikube GITDIR] [--containerd GITDIR --crio GITDIR --cri-dockerd GITDIR] [--out DIR]\n`)
  process.exit(2)
}

function git(dir, ...gitArgs) {
  return execFileSync('git', ['--git-dir', gitDirOf(dir), ...gitArgs], {encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore']})
}

function gitDirOf(dir) {
  try {
    return execFileSync('git', ['-C', dir, 'rev-parse', '--git-dir'], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']}).trim().replace(/^(?!\/)/, `${resolve(dir)}/`)
  } catch {
    return resolve(dir)
  }
}

function tryShow(dir, rev, path) {
  try {
    return git(dir, 'show', `${rev}:${path}`)
  } catch {
    return undefined
  }
}

function head(dir) {
  const [commit, date] = git(dir, 'log', '-1', '--format=%H %cI').trim().split(' ')
  return {commit, date}
}

function parseVersion(v) {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-(.+))?$/.exec(v)
  return m ? {major: +m[1], minor: +m[2], patch: +m[3], pre: m[4]} : undefined
}

function cmp(a, b) {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch
}

function fmt(v) {
  return `${v.major}.${v.minor}.${v.patch}${v.pre ? `-${v.pre}` : ''}`
}

// ---------------------------------------------------------------- kubeadm releases
function kubeadmTable() {
  const dir = args.minikube
  const imagesPath = 'pkg/minikube/constants/constants_kubeadm_images.go'
  const versionsPath = 'pkg/minikube/constants/constants_kubernetes_versions.go'
  const text = tryShow(dir, 'HEAD', imagesPath)
  if (!text) throw new Error(`${imagesPath} not found in ${dir}`)
  const entries = new Map()
  const block = /"(v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)":\s*\{([^}]*)\}/g
  for (const m of text.matchAll(block)) {
    const images = {}
    for (const kv of m[2].matchAll(/"([^"]+)":\s*"([^"]+)"/g)) images[kv[1]] = kv[2]
    entries.set(m[1], images)
  }
  const releasedText = tryShow(dir, 'HEAD', versionsPath) ?? ''
  const released = [...releasedText.matchAll(/"(v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)"/g)].map((m) => m[1])

  const rows = []
  const prereleases = []
  let newestStable
  for (const [tag, images] of entries) {
    const v = parseVersion(tag)
    if (!v || cmp(v, {major: OLDEST[0], minor: OLDEST[1], patch: OLDEST[2]}) < 0) continue
    const row = kubeadmRow(v, images, tag)
    if (v.pre) prereleases.push(row)
    else {
      rows.push(row)
      if (!newestStable || cmp(v, newestStable) > 0) newestStable = v
    }
  }
  rows.sort((a, b) => cmp(parseVersion(a.version), parseVersion(b.version)))
  // Pre-releases are kept only for a minor with no GA release yet (the rules above are dated by GA releases).
  const newestMinor = newestStable.minor
  const keptPre = prereleases
    .filter((r) => parseVersion(r.version).minor > newestMinor)
    .sort((a, b) => cmp(parseVersion(a.version), parseVersion(b.version)) || a.version.localeCompare(b.version))
  // Releases minikube lists as published but whose kubeadm output it has not recorded yet.
  const have = new Set(rows.map((r) => r.version))
  const withoutImages = released
    .map(parseVersion)
    .filter((v) => v && !v.pre && v.major === 1 && v.minor >= OLDEST[1] && !have.has(fmt(v)))
    .sort(cmp)
    .map(fmt)

  return {
    $comment: 'Generated by scripts/gen-kube-data.mjs — do not edit by hand; re-run the script to refresh.',
    source: {
      description:
        'Per-release output of the real `kubeadm config images list --kubernetes-version <v>` (kubeadm binary of that release), as recorded by kubernetes/minikube hack/update/kubeadm_constants; registry prefix and print order re-applied from the kubeadm changes named in rules.',
      repository: 'https://github.com/kubernetes/minikube',
      path: imagesPath,
      releasesPath: versionsPath,
      ...head(dir),
    },
    rules: {
      imageRepository: {
        old: 'k8s.gcr.io',
        new: 'registry.k8s.io',
        newFromMinor: NEW_REGISTRY_FROM_MINOR,
        backportedAtPatch: Object.fromEntries(Object.entries(REGISTRY_SWITCH).map(([m, p]) => [`1.${m}`, p])),
        source: 'kubernetes PRs 109938, 110343 (v1.25.0); backports 113392 (v1.22.17), 113393 (v1.23.15), 113395 (v1.24.9)',
      },
      order: {
        legacy: ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy', 'pause', 'etcd', 'coredns'],
        dnsFirst: ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy', 'coredns', 'pause', 'etcd'],
        dnsFirstFromMinor: DNS_FIRST_FROM_MINOR,
        source: 'kubernetes PR 114534 (cmd/kubeadm/app/images/images.go GetControlPlaneImages, v1.29.0)',
      },
      corednsNestedUnderAnyRepository: {releases: COREDNS_NESTED_UNDER_ANY_REPOSITORY, source: 'kubernetes PR 102502 (fixed in v1.21.2)'},
      corednsPath:
        'From v1.21.0 CoreDNS is coredns/coredns:v<x> under the default repository and <repo>/coredns:v<x> under a custom one (images.go GetDNSImage); before v1.21 it is <repo>/coredns:<x> everywhere.',
      archSuffix: 'None of these releases uses arch-suffixed names (kube-apiserver-amd64 etc. ended with kubeadm v1.12 manifest lists).',
      kubernetesImageTag: 'The version itself with "+" replaced by "_" (kubeadmutil.KubernetesVersionToImageTag).',
    },
    releases: rows,
    prereleases: keptPre,
    releasedWithoutImages: withoutImages,
  }
}

function kubeadmRow(v, images, tag) {
  const dnsPath = images['coredns/coredns'] !== undefined ? 'coredns/coredns' : images.coredns !== undefined ? 'coredns' : undefined
  if (!dnsPath || !images.etcd || !images.pause) throw new Error(`incomplete minikube entry for ${tag}: ${JSON.stringify(images)}`)
  const expectedPath = v.minor >= 21 ? 'coredns/coredns' : 'coredns'
  if (dnsPath !== expectedPath) throw new Error(`${tag}: CoreDNS path ${dnsPath} contradicts the v1.21 rule`)
  const newRegistry = v.minor >= NEW_REGISTRY_FROM_MINOR || (REGISTRY_SWITCH[v.minor] !== undefined && v.patch >= REGISTRY_SWITCH[v.minor])
  return {
    version: fmt(v),
    registry: newRegistry ? 'registry.k8s.io' : 'k8s.gcr.io',
    coredns: images[dnsPath],
    corednsPath: dnsPath,
    etcd: images.etcd,
    pause: images.pause,
    order: v.minor >= DNS_FIRST_FROM_MINOR ? 'dnsFirst' : 'legacy',
    ...(COREDNS_NESTED_UNDER_ANY_REPOSITORY.includes(fmt(v)) ? {corednsNestedUnderAnyRepository: true} : {}),
  }
}

// ---------------------------------------------------------------- runtimes
/*
 * Every value below is read from the runtime's own source at each release tag (`git show TAG:PATH`) and recorded
 * with where it was read: `TAG:PATH:LINE`. A series whose value cannot be read as a fully qualified image is left
 * out of `releases` and listed in `omitted` with the reason, never filled in by hand.
 */
function stableTags(dir, pattern) {
  return git(dir, 'tag', '-l', pattern)
    .split('\n')
    .filter((t) => /^v\d+\.\d+\.\d+$/.test(t))
    .map((t) => ({tag: t, v: parseVersion(t)}))
    .sort((a, b) => cmp(a.v, b.v))
}

/** First line of the first existing path matching regex → {value: group 1, at: 'TAG:PATH:LINE'}. */
function findLine(dir, tag, paths, regex) {
  for (const path of paths) {
    const lines = (tryShow(dir, tag, path) ?? '').split('\n')
    const index = lines.findIndex((line) => regex.test(line))
    if (index >= 0) return {value: regex.exec(lines[index])[1], at: `${tag}:${path}:${index + 1}`, line: lines[index]}
  }
  return undefined
}

function need(found, what) {
  if (!found) throw new Error(`${what}: not found in its source`)
  return found
}

const seriesOf = (v) => `${v.major}.${v.minor}`

/** An image reference whose first component names a registry (domain with a dot or a port, or localhost). */
function isQualified(image) {
  const first = image.split('/')[0]
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')
}

/**
 * Per-series facts: computed at every tag of the series and required to agree (the row keeps the newest tag's
 * source lines); a disagreement stops the generator rather than picking one.
 */
function seriesTable(tags, factsOf) {
  const bySeries = new Map()
  for (const {tag, v} of tags) {
    const facts = factsOf(tag, v)
    const key = seriesOf(v)
    const previous = bySeries.get(key)
    if (previous) {
      for (const [name, value] of Object.entries(facts)) {
        if (name.endsWith('Source')) continue
        if (JSON.stringify(value) !== JSON.stringify(previous[name])) throw new Error(`${tag}: ${name} ${JSON.stringify(value)} differs from earlier ${key} tags (${JSON.stringify(previous[name])})`)
      }
    }
    bySeries.set(key, {series: key, ...facts})
  }
  return [...bySeries.values()]
}

const CONTAINERD_OLDEST = {major: 1, minor: 4, patch: 0}

/** Where containerd keeps the CRI plugin: vendored containerd/cri (1.4), pkg/cri (1.5–1.7), internal/cri + plugins/cri (2.x). */
function containerdPaths(v) {
  if (v.major >= 2) return {config: 'internal/cri/config/config.go', unix: 'internal/cri/config/config_unix.go', plugin: 'plugins/cri/images/plugin.go', types: 'plugins/types.go'}
  const cri = v.minor <= 4 ? {config: 'vendor/github.com/containerd/cri/pkg/config/', plugin: 'vendor/github.com/containerd/cri/cri.go'} : {config: 'pkg/cri/config/', plugin: 'pkg/cri/cri.go'}
  return {config: `${cri.config}config.go`, unix: `${cri.config}config_unix.go`, plugin: cri.plugin, types: 'plugin/plugin.go'}
}

function containerdFacts(dir, tag, v) {
  const p = containerdPaths(v)
  const what = `containerd ${tag}`
  if (v.major >= 2) {
    const configVersion = need(findLine(dir, tag, ['version/version.go'], /^const ConfigVersion = (\d+)/), `${what} ConfigVersion`)
    const type = need(findLine(dir, tag, [p.types], /^\s*CRIServicePlugin\s+plugin\.Type\s*=\s*"([^"]+)"/), `${what} CRIServicePlugin`)
    const id = need(findLine(dir, tag, [p.plugin], /^\s*ID:\s*"([^"]+)"/), `${what} images plugin ID`)
    const table = need(findLine(dir, tag, [p.config], /^\s*PinnedImages\s+map\[string\]string\s+`toml:"([^"]+)"/), `${what} pinned_images`)
    const key = need(findLine(dir, tag, [p.unix], /^\s*"([^"]+)":\s*DefaultSandboxImage,/), `${what} pinned sandbox key`)
    const configPath = findLine(dir, tag, [p.config], /^\s*ConfigPath\s+string\s+`toml:"(config_path)"/)
    return {
      configVersion: Number(configVersion.value),
      configVersionSource: `${configVersion.at} ConfigVersion (what \`containerd config default\` writes)`,
      setting: `[plugins."${type.value}.${id.value}".${table.value}] ${key.value}`,
      settingSource: [`${type.at} CRIServicePlugin`, `${id.at} ID`, `${table.at} PinnedImages`, `${key.at} DefaultSandboxImage key`],
      registryConfigPath: Boolean(configPath),
      registryConfigPathSource: configPath ? `${configPath.at} Registry.ConfigPath` : `no config_path field in ${tag}:${p.config}`,
    }
  }
  const configVersion = need(findLine(dir, tag, ['cmd/containerd/command/config.go'], /^\s*config\.Config\.Version = (\d+)/), `${what} config default version`)
  const type = need(findLine(dir, tag, [p.types], /^\s*GRPCPlugin\s+Type\s*=\s*"([^"]+)"/), `${what} GRPCPlugin`)
  need(findLine(dir, tag, [p.plugin], /^\s*Type:\s*(plugin\.GRPCPlugin),/), `${what} CRI plugin type`)
  const id = need(findLine(dir, tag, [p.plugin], /^\s*ID:\s*"([^"]+)"/), `${what} CRI plugin ID`)
  const key = need(findLine(dir, tag, [p.config], /^\s*SandboxImage\s+string\s+`toml:"([^"]+)"/), `${what} SandboxImage toml key`)
  const configPath = findLine(dir, tag, [p.config], /^\s*ConfigPath\s+string\s+`toml:"(config_path)"/)
  return {
    configVersion: Number(configVersion.value),
    configVersionSource: `${configVersion.at} (\`containerd config default\` writes version ${configVersion.value})`,
    setting: `[plugins."${type.value}.${id.value}"] ${key.value}`,
    settingSource: [`${type.at} GRPCPlugin`, `${id.at} ID`, `${key.at} SandboxImage`],
    registryConfigPath: Boolean(configPath),
    registryConfigPathSource: configPath ? `${configPath.at} Registry.ConfigPath` : `no config_path field in ${tag}:${p.config}`,
  }
}

function containerdTable() {
  const dir = args.containerd
  const tags = stableTags(dir, 'v*').filter(({v}) => cmp(v, CONTAINERD_OLDEST) >= 0)
  const releases = []
  for (const {tag, v} of tags) {
    const p = containerdPaths(v)
    const found = v.major >= 2 ? findLine(dir, tag, [p.config], /^\s*DefaultSandboxImage\s*=\s*"([^"]+)"/) : findLine(dir, tag, [p.unix], /^\s*SandboxImage:\s*"([^"]+)"/)
    need(found, `containerd ${tag} default sandbox image`)
    if (!isQualified(found.value)) throw new Error(`containerd ${tag}: default sandbox image ${found.value} is not fully qualified`)
    releases.push({version: fmt(v), sandboxImage: found.value, source: `${found.at} ${v.major >= 2 ? 'DefaultSandboxImage' : 'SandboxImage'}`})
  }
  return {
    name: 'containerd',
    source: {repository: 'https://github.com/containerd/containerd', ...head(dir)},
    file: '/etc/containerd/config.toml',
    series: seriesTable(tags, (tag, v) => containerdFacts(dir, tag, v)),
    releases,
    omitted: [...new Set(stableTags(dir, 'v*').filter(({v}) => cmp(v, CONTAINERD_OLDEST) < 0 && v.major >= 1).map(({v}) => seriesOf(v)))].map((series) => ({
      series,
      reason: `older than containerd ${seriesOf(CONTAINERD_OLDEST)}, where the table starts: not read`,
    })),
  }
}

const CRIO_PAUSE_FILES = ['pkg/config/config_linux.go', 'pkg/config/config.go', 'lib/config/config.go', 'lib/config.go', 'libkpod/config.go']
const CRIO_PAUSE = /^\s*(?:DefaultPauseImage\s+(?:string\s+)?=|PauseImage:|pauseImage\s*=)\s*"([^"]+)"/

function crioTable() {
  const dir = args.crio
  const tags = stableTags(dir, 'v1.*')
  const releases = []
  const unqualified = new Map()
  for (const {tag, v} of tags) {
    const found = need(findLine(dir, tag, CRIO_PAUSE_FILES, CRIO_PAUSE), `cri-o ${tag} default pause image`)
    if (!isQualified(found.value)) {
      const key = seriesOf(v)
      unqualified.set(key, {series: key, value: found.value, source: [...(unqualified.get(key)?.source ?? []), found.at]})
      continue
    }
    releases.push({version: fmt(v), sandboxImage: found.value, source: `${found.at} ${/\w*[Pp]auseImage/.exec(found.line)[0]}`})
  }
  const known = new Set(releases.map((r) => seriesOf(parseVersion(r.version))))
  const listed = tags.filter(({v}) => known.has(seriesOf(v)))
  const facts = (tag) => {
    const field = need(findLine(dir, tag, CRIO_PAUSE_FILES.slice(1), /^\s*PauseImage\s+string\s+`toml:"([^"]+)"/), `cri-o ${tag} pause_image field`)
    const table = need(findLine(dir, tag, CRIO_PAUSE_FILES.slice(1), /^\s*Image\s+struct\{\s*(?:\w+\.)?ImageConfig\s*\}\s+`toml:"([^"]+)"/), `cri-o ${tag} image table`)
    const root = need(findLine(dir, tag, CRIO_PAUSE_FILES.slice(1), /^\s*\}\s+`toml:"(crio)"`/), `cri-o ${tag} crio table`)
    return {setting: `[${root.value}.${table.value}] ${field.value}`, settingSource: [`${root.at} crio`, `${table.at} Image`, `${field.at} PauseImage`]}
  }
  return {
    name: 'cri-o',
    source: {repository: 'https://github.com/cri-o/cri-o', ...head(dir)},
    file: '/etc/crio/crio.conf (or a drop-in in /etc/crio/crio.conf.d/)',
    series: seriesTable(listed, facts),
    releases,
    omitted: [...unqualified.values()].map((u) => ({
      series: u.series,
      reason: `default pause image "${u.value}" is an unqualified name: CRI-O resolves it through the node's own \`registries\` list (no default in the source), so no single image can be named`,
      source: `${u.source[0]} … ${u.source.at(-1)}`,
    })),
  }
}

function criDockerdTable() {
  const dir = args['cri-dockerd']
  const tags = stableTags(dir, 'v*').filter(({v}) => cmp(v, {major: 0, minor: 2, patch: 0}) >= 0)
  const releases = []
  for (const {tag, v} of tags) {
    let found
    for (const file of git(dir, 'ls-tree', '-r', '--name-only', tag).split('\n')) {
      if (!file.endsWith('.go') || file.endsWith('_test.go') || file.startsWith('vendor/')) continue
      found = findLine(dir, tag, [file], /"([a-z0-9.\-/]*\/pause:[0-9.]+)"/)
      if (found) break
    }
    need(found, `cri-dockerd ${tag} default pause image`)
    releases.push({version: fmt(v), sandboxImage: found.value, source: `${found.at} ${/\w+\s*=/.exec(found.line)?.[0].replace(/\s*=$/, '') ?? 'pause image literal'}`})
  }
  const flag = (tag) => {
    const found = need(findLine(dir, tag, ['config/options.go', 'src/config/options.go'], /"(pod-infra-container-image)"/), `cri-dockerd ${tag} flag`)
    return {setting: `--${found.value}`, settingSource: [found.at]}
  }
  return {
    name: 'cri-dockerd',
    source: {repository: 'https://github.com/Mirantis/cri-dockerd', ...head(dir)},
    file: 'cri-docker.service (ExecStart)',
    series: seriesTable(tags, flag),
    releases,
    omitted: [],
  }
}

/** Indented JSON with each release row on one line (diffs stay one line per release). */
function toJson(value) {
  return `${JSON.stringify(value, null, 1).replace(/\{\n\s+("version"[^{}]*?)\n\s*\}/g, (_m, body) => `{${body.replace(/\n\s*/g, ' ')}}`)}\n`
}

mkdirSync(outDir, {recursive: true})
if (args.minikube) {
  const kubeadm = kubeadmTable()
  writeFileSync(join(outDir, 'kubeadm-releases.json'), toJson(kubeadm))
  process.stdout.write(`kubeadm-releases.json: ${kubeadm.releases.length} releases (${kubeadm.releases[0].version} … ${kubeadm.releases.at(-1).version}), ${kubeadm.prereleases.length} pre-releases\n`)
}

if (args.containerd || args.crio || args['cri-dockerd']) {
  if (!(args.containerd && args.crio && args['cri-dockerd'])) usage('runtime tables need --containerd, --crio and --cri-dockerd together')
  const runtimes = {
    $comment: 'Generated by scripts/gen-kube-data.mjs — do not edit by hand; re-run the script to refresh.',
    $sources: 'Every value names where it was read: TAG:PATH:LINE in the runtime repository (source.repository); series facts are checked equal at every tag of the series and cite the newest.',
    runtimes: {containerd: containerdTable(), 'cri-o': crioTable(), 'cri-dockerd': criDockerdTable()},
  }
  writeFileSync(join(outDir, 'runtime-pause.json'), toJson(runtimes))
  for (const r of Object.values(runtimes.runtimes)) process.stdout.write(`runtime-pause.json: ${r.name} ${r.releases.length} releases, series ${r.series.map((s) => s.series).join(' ')}${r.omitted.length ? `; omitted ${r.omitted.map((o) => o.series).join(', ')}` : ''}\n`)
}
