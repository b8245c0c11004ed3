import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {imageListFlags, imageListOptions} from '../cli/image-flags.js'
import {clientOptionsFromFlags, registryFlags, stderrLog} from '../cli/registry-flags.js'
import {KubeferryError} from '../oci/errors.js'
import type {Lockfile} from '../kube/lockfile.js'
import type {ImageEntry} from '../kube/resolve.js'
import {formatReference} from '../oci/reference.js'

export default class Images extends BaseCommand {
  static override summary = 'List the exact images a Kubernetes version needs (kubeadm\'s list, runtime pause images, extras), offline.'
  static override description = [
    'Prints, one per line and in kubeadm\'s order, what `kubeadm config images list` prints for the version, from a release table, without network access. Extra images (--runtime, --image, --images-file, --from-manifests) follow, deduplicated by normalised reference.',
    'Notes on whose image is whose and warnings go to stderr; --wide adds ROLE and SOURCE columns; --json gives everything.',
    '--digests resolves every image through the registries (mirrors and auth as for `resolve`); --lock FILE writes them as a lockfile for `create`.',
  ].join('\n\n')
  static override examples = [
    {description: 'What kubeadm pulls for v1.31.6:', command: '<%= config.bin %> images --kubernetes-version v1.31.6'},
    {description: 'The newest known 1.31 patch from an internal repository, plus containerd 1.7\'s pause image:', command: '<%= config.bin %> images --kubernetes-version 1.31 --image-repository registry.corp:5000/k8s --runtime containerd@1.7'},
    {description: 'From a kubeadm configuration file, for CRI-O 1.30, as JSON:', command: '<%= config.bin %> images --config kubeadm.yaml --runtime cri-o@1.30 --json'},
    {description: 'Add the images of a Helm chart, read from standard input:', command: 'helm template ingress-nginx ingress-nginx/ingress-nginx | <%= config.bin %> images --kubernetes-version v1.31.6 --from-manifests -'},
    {description: 'Resolve every image to its digest and write a lockfile for create --lock:', command: '<%= config.bin %> images --kubernetes-version v1.31.6 --digests --lock images.lock.json'},
  ]
  static override flags = {
    ...imageListFlags,
    wide: Flags.boolean({description: 'Print NAME, ROLE and SOURCE columns.', default: false}),
    digests: Flags.boolean({description: 'Resolve every image to its digest through the registries (needs network or --mirror).', default: false}),
    lock: Flags.string({description: 'Write a lockfile (JSON: reference, digest, media type, platforms) for `create`; implies --digests.', helpValue: 'FILE'}),
    ...registryFlags,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Images)
    // Imported here, not at the top: oclif may import every command just to list them (no oclif.manifest.json).
    const [{lockImageList, writeLockfile}, {resolveImageList}, {RegistryClient}] = await Promise.all([import('../kube/lockfile.js'), import('../kube/resolve.js'), import('../registry/client.js')])
    if ((flags['from-manifests'] ?? []).filter((p) => p === '-').length > 1) {
      throw new KubeferryError('INVALID_ARGUMENT', '--from-manifests - given twice', {hint: 'stdin can be read once'})
    }
    const list = await resolveImageList(imageListOptions(flags))

    let lock: Lockfile | undefined
    if (flags.digests || flags.lock) {
      const client = new RegistryClient(await clientOptionsFromFlags(flags, {log: stderrLog(flags.debug)}))
      try {
        lock = await lockImageList(client, list, {concurrency: flags.concurrency})
      } finally {
        await client.close()
      }
      if (flags.lock) await writeLockfile(flags.lock, lock)
    }
    const digestOf = new Map(lock?.images.map((i) => [i.reference, i.digest]))

    if (flags.json) {
      this.printJson({
        ...(list.kubeadm ? {kubeadm: list.kubeadm} : {}),
        images: list.entries.map((e) => ({
          name: e.name,
          tag: e.reference.tag,
          ...(digestOf.has(formatReference(e.reference)) ? {digest: digestOf.get(formatReference(e.reference))} : {}),
          role: e.role,
          source: e.source,
          sources: e.sources,
          ...(e.derived ? {derived: true} : {}),
        })),
        warnings: list.warnings,
      })
      return
    }

    for (const warning of list.warnings) this.warn2(warning)
    if (flags.wide) {
      const rows = list.entries.map((e) => [withDigest(e, digestOf), e.role + (e.derived ? ' (derived)' : ''), e.sources.join('; ')])
      const widths = [0, 1].map((i) => Math.max(i === 0 ? 4 : 4, ...rows.map((r) => r[i].length)))
      const line = (r: string[]) => `${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2]}`.trimEnd()
      this.log(line(['NAME', 'ROLE', 'SOURCE']))
      for (const row of rows) this.log(line(row))
    } else {
      for (const entry of list.entries) {
        if (entry.role === 'sandbox' || entry.sources.length > 1 && entry.sources.some((s) => !s.startsWith('kubeadm'))) {
          process.stderr.write(`note: ${entry.name} is ${entry.sources.join(' and ')}\n`)
        }
        this.log(withDigest(entry, digestOf))
      }
    }
    if (flags.lock) process.stderr.write(`wrote ${flags.lock} (${lock!.images.length} images)\n`)
  }
}

function withDigest(entry: ImageEntry, digests: Map<string, string>): string {
  const digest = digests.get(formatReference(entry.reference))
  return digest ? `${entry.name}@${digest}` : entry.name
}
