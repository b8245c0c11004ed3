import * as Args from '@oclif/core/args'
import {BaseCommand} from '../cli/base-command.js'
import {checkBundleTrust, signedByLine, trustFlags} from '../cli/trust-flags.js'
import {formatBytes} from '../ui/progress.js'

export default class Inspect extends BaseCommand {
  static override summary = 'Show what a bundle holds: images, digests, platforms, sizes, roles (whose pause is which), the publishers\' signatures, attestations and SBOMs carried (and who signed), how it was built.'
  static override description = 'Reads the bundle\'s metadata (kubeferry/bundle.json) and index after a quick structure check; no blob is hashed (`kubeferry verify` does that).'
  static override examples = [
    {description: 'A table of the images:', command: '<%= config.bin %> inspect k8s-v1.31.6.tar'},
    {description: 'Everything, as JSON:', command: '<%= config.bin %> inspect k8s.tar --json'},
  ]
  static override args = {bundle: Args.string({description: 'Bundle file (.tar), or its first part (.tar.001) for a bundle in parts.', required: true})}
  static override flags = {...trustFlags}

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Inspect)
    // not at the top: oclif may import every command to list them
    const [{inspectBundle}, {artifactLine}] = await Promise.all([import('../bundle/inspect.js'), import('../bundle/inspect-artifacts.js')])
    const trust = await checkBundleTrust(args.bundle, flags, {nothing: 'inspected'})
    const info = await inspectBundle(args.bundle)
    const unchecked = trust ? undefined : await import('../trust/verify.js').then(async ({signaturesBeside}) => signaturesBeside(args.bundle))
    if (flags.json) {
      this.printJson(trust ? {...info, signatures: trust} : unchecked ? {...info, signatures: {...unchecked, checked: false}} : info)
      return
    }
    const r = info.request
    const built = [
      r.kubernetesVersion ? `Kubernetes ${r.kubernetesVersion}` : undefined,
      r.runtimes?.length ? `runtimes ${r.runtimes.join(', ')}` : undefined,
      r.images?.length ? `${r.images.length} --image` : undefined,
      r.imagesFiles?.length ? `images files ${r.imagesFiles.join(', ')}` : undefined,
      r.manifests?.length ? `manifests ${r.manifests.join(', ')}` : undefined,
      r.lockfile ? `lockfile ${r.lockfile}` : undefined,
    ].filter(Boolean)
    this.log(`${info.path}: ${formatBytes(info.fileSize)}, made by ${info.tool.name} ${info.tool.version}${info.created ? ` at ${info.created}` : ''}`)
    this.log(`built from: ${built.join('; ') || 'unknown'}`)
    if (trust) this.log(signedByLine(trust))
    else if (unchecked) this.log(`signatures: ${unchecked.keyids.length} in ${unchecked.signatureFile} (keyids ${unchecked.keyids.map((k) => k.slice(0, 16)).join(', ')}), not checked: give --key SIGNER.pub`)
    this.log(`platforms: ${info.platforms.join(', ')} (docker load: ${info.dockerPlatform}); ${info.blobs.count} unique blobs, ${formatBytes(info.blobs.totalSize)}`)
    if (info.trustedRoot) this.log(`Sigstore trusted root carried (${info.trustedRoot.digest}): keyless image signatures are checked against it (verify --images)`)
    const d = info.delta
    if (d) this.log(`delta against ${d.base.kind} ${d.base.name}${d.base.sha256 ? ` (sha256 ${d.base.sha256.slice(0, 12)}…)` : ''}, for ${d.for.join(' and ')}: ${d.reliedBlobs} layers not carried, ${formatBytes(d.savedBytes)} saved (${formatBytes(info.fileSize)} instead of about ${formatBytes(info.fileSize + d.savedBytes)})`)
    this.log('')
    const rows = info.images.map((i) => [i.name, i.role ?? '-', i.digest.slice(0, 19), i.platforms.join(',') + (i.sparse ? ' (sparse)' : ''), formatBytes(i.size)])
    const head = ['IMAGE', 'ROLE', 'DIGEST', 'PLATFORMS', 'SIZE']
    const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)))
    const line = (row: string[]): string => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')
    this.log(line(head))
    for (const row of rows) this.log(line(row))
    const signed = info.images.filter((i) => i.artifacts?.length)
    if (signed.length > 0) {
      this.log('')
      this.log('signatures, attestations, SBOMs and referrers carried (not verified here):')
      for (const i of signed) {
        this.log(`  ${i.name}`)
        for (const a of i.artifacts!) this.log(`    ${artifactLine(a)}`)
      }
    }
    if (info.pause.length > 0) {
      this.log('')
      this.log('pause (sandbox) images:')
      for (const p of info.pause) this.log(`  ${p.name}: ${p.for.join('; ')}`)
    }
  }
}
