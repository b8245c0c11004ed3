import {resolve as resolvePath} from 'node:path'
import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {clientOptionsFromFlags, registryFlags, stderrLog} from '../cli/registry-flags.js'
import {formatBytes} from '../ui/progress.js'
import type {DiffReport} from '../delta/diff.js'

const percent = (part: number, whole: number): string => (whole === 0 ? '0 %' : `${Math.round((100 * part) / whole)} %`)

export default class Diff extends BaseCommand {
  static override summary = 'Show what an upgrade changes: images, blobs, and the bytes a delta bundle (create --base OLD) carries against a full one.'
  static override description = [
    'OLD and NEW are each a bundle (or its first part), its kubeferry/bundle.json, or a lockfile (`kubeferry images --lock`). Bundles and bundle.json files are read offline; a lockfile\'s manifests are read from the registry (no layer is downloaded), for the platforms of the bundle beside it or --platform.',
    'Images are paired by name, then by repository where one tag replaced another. A delta leaves out only the layers OLD holds; manifests, indexes and configs always travel.',
  ].join('\n\n')
  static override examples = [
    {description: 'What the upgrade from the bundle on site to a new lockfile carries:', command: '<%= config.bin %> diff k8s-v1.31.0.tar k8s-v1.31.6.lock'},
    {description: 'Two bundle.json files, as JSON:', command: '<%= config.bin %> diff old/bundle.json new/bundle.json --json'},
  ]
  static override args = {
    old: Args.string({description: 'The earlier set: a bundle, its bundle.json, or a lockfile.', required: true}),
    new: Args.string({description: 'The later set: a bundle, its bundle.json, or a lockfile.', required: true}),
  }
  static override flags = {
    platform: Flags.string({description: 'Platforms to read a lockfile\'s images for (repeatable). Default: those of the bundle on the other side, else linux/amd64.', multiple: true, helpValue: 'PLATFORM'}),
    ...registryFlags,
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Diff)
    const [{readSide}, {diffSides}] = await Promise.all([import('../delta/diff-side.js'), import('../delta/diff.js')])
    const read = await Promise.all([args.old, args.new].map((path) => readSide(resolvePath(path))))
    const known = read.flatMap((side) => ('images' in side ? side.platforms : []))
    const platforms = flags.platform?.length ? flags.platform.flatMap((p) => p.split(',')) : known.length > 0 ? [...new Set(known)] : ['linux/amd64']
    const sides = await Promise.all(read.map(async (side) => {
      if ('images' in side) return side
      const [{planBundle}, {registrySource}, {RegistryClient}, {formatPlatform, parsePlatform}] = await Promise.all([
        import('../bundle/plan.js'), import('../registry/source.js'), import('../registry/client.js'), import('../oci/platform.js'),
      ])
      const client = new RegistryClient({...(await clientOptionsFromFlags(flags, {log: stderrLog(flags.debug)}))})
      try {
        const wanted = [...new Set(platforms.map((p) => formatPlatform(parsePlatform(p.trim()))))]
        const plan = await planBundle(registrySource(client), side.lock.images.map((i) => ({reference: i.reference, digest: i.digest})), {platforms: wanted, skipMissingPlatforms: true})
        return {label: side.label, kind: side.kind, images: plan.images, platforms: wanted}
      } finally {
        await client.close()
      }
    }))
    const report = diffSides(sides[0], sides[1])
    if (flags.json) {
      this.printJson(report)
      return
    }
    this.print(report)
  }

  private print(report: DiffReport): void {
    const {old, new: next, blobs, carry} = report
    this.log(`${old.label} (${old.kind}, ${old.images} images) → ${next.label} (${next.kind}, ${next.images} images)`)
    const count = (change: string): number => report.images.filter((i) => i.change === change).length
    this.log(`images: ${count('changed')} changed, ${count('added')} added, ${count('removed')} removed, ${count('unchanged')} unchanged`)
    const rows = report.images
      .filter((i) => i.change !== 'unchanged')
      .map((i) => [i.change, i.name, i.change === 'changed' && i.old!.name !== i.new!.name ? `was ${i.old!.name}` : i.change === 'changed' ? `digest ${i.old!.digest.slice(0, 19)} → ${i.new!.digest.slice(0, 19)}` : '', i.change === 'removed' ? '' : formatBytes(i.newBytes)])
    if (rows.length > 0) {
      const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)))
      for (const r of rows) this.log(`  ${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2].padEnd(widths[2])}  ${r[3]}`.trimEnd())
    }
    this.log(`blobs: ${blobs.added.count} new (${formatBytes(blobs.added.bytes)}), ${blobs.shared.count} already in ${old.label} (${formatBytes(blobs.shared.bytes)}), ${blobs.dropped.count} no longer used (${formatBytes(blobs.dropped.bytes)})`)
    this.log(`carry: ${formatBytes(carry.delta)} as a delta (create --base ${old.label}) against ${formatBytes(carry.full)} as a full bundle: ${formatBytes(carry.saved)} (${percent(carry.saved, carry.full)}) saved`)
  }
}
