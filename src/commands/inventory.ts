import {resolve as resolvePath} from 'node:path'
import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {clientOptionsFromFlags, registryFlags, stderrLog} from '../cli/registry-flags.js'
import {KubeferryError} from '../oci/errors.js'

// Mirrors are for pulls from upstream; an inventory reads exactly the registry it is given.
const {mirror: _mirror, ...inventoryRegistryFlags} = registryFlags

export default class Inventory extends BaseCommand {
  static override summary = 'Write down what an internal registry or this node\'s runtime holds, for `create --base` (a delta bundle of only what is missing).'
  static override description = [
    'Run it inside the gap and carry the small JSON file back out: it names images, digests and layer chains, never a secret nor an image byte, so a person can read what leaves the site.',
    'REGISTRY/PREFIX: the repositories come from the image names in --images-from (a lockfile, a bundle.json or a bundle, placed under the prefix as `push` places them) and --repository; no _catalog access is needed. Every tag of each repository is read, with a HEAD of each blob. A delta made against it is for `push`.',
    '--runtime: containerd\'s content store (namespace --namespace), or docker\'s or podman\'s image store (their layer chains). A delta made against it is for install.sh and `load` on that node.',
    'Outside, `kubeferry create … --base FILE` makes the delta against it.',
  ].join('\n\n')
  static override examples = [
    {description: 'What the internal registry holds of the images of the last bundle:', command: '<%= config.bin %> inventory registry.corp:5000/k8s --images-from k8s-v1.31.0.lock -o registry.inventory.json'},
    {description: 'What this node\'s containerd holds:', command: '<%= config.bin %> inventory --runtime containerd -o node.inventory.json'},
  ]
  static override args = {registry: Args.string({description: 'REGISTRY[/PREFIX] to take the inventory of (omit with --runtime).', required: false})}
  static override flags = {
    output: Flags.string({char: 'o', description: 'Inventory file to write (JSON text); without it the inventory is printed.', helpValue: 'FILE'}),
    'images-from': Flags.string({description: 'Image names to look for: a lockfile, a bundle.json or a bundle (repeatable).', multiple: true, helpValue: 'FILE'}),
    repository: Flags.string({description: 'Also list this repository, as named in the registry (repeatable).', multiple: true, helpValue: 'REPO'}),
    runtime: Flags.string({description: 'Take the inventory of this node\'s runtime instead of a registry.', options: ['containerd', 'k3s', 'rke2', 'docker', 'podman', 'nerdctl', 'cri-o']}),
    address: Flags.string({description: 'Runtime socket (containerd: default CONTAINERD_ADDRESS or /run/containerd/containerd.sock; docker: DOCKER_HOST).', helpValue: 'SOCKET'}),
    namespace: Flags.string({description: "containerd namespace (the kubelet's is k8s.io).", default: 'k8s.io'}),
    ...inventoryRegistryFlags,
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Inventory)
    const [{writeInventory, sortedInventory}, {toolVersion}] = await Promise.all([import('../delta/inventory-file.js'), import('../bundle/writer.js')])
    if (Boolean(args.registry) === Boolean(flags.runtime)) {
      throw new KubeferryError('USAGE', 'give either REGISTRY/PREFIX or --runtime', {hint: 'kubeferry inventory registry.corp:5000/k8s --images-from k8s.lock -o FILE, or kubeferry inventory --runtime containerd -o FILE', exitCode: 2})
    }
    let inventory
    if (flags.runtime) {
      const {takeRuntimeInventory} = await import('../delta/runtime-inventory.js')
      inventory = await takeRuntimeInventory({runtime: flags.runtime as 'containerd', address: flags.address, namespace: flags.namespace, tool: toolVersion()})
    } else {
      const [{takeRegistryInventory, imageNamesFrom}, {parseDestination}, {RegistryClient}] = await Promise.all([import('../delta/registry-inventory.js'), import('../registry/rename.js'), import('../registry/client.js')])
      const destination = parseDestination(args.registry!)
      if (!flags['images-from']?.length && !flags.repository?.length) {
        throw new KubeferryError('USAGE', 'which repositories? give --images-from (a lockfile, bundle.json or bundle) or --repository', {hint: 'kubeferry reads no _catalog: name the images whose repositories to list', exitCode: 2})
      }
      const images = (await Promise.all((flags['images-from'] ?? []).map((path) => imageNamesFrom(resolvePath(path))))).flat()
      const client = new RegistryClient({...(await clientOptionsFromFlags(flags, {log: stderrLog(flags.debug), credentialsHost: destination.registry})), mirrors: {}})
      try {
        inventory = await takeRegistryInventory(client, {destination, images, repositories: flags.repository, tool: toolVersion()})
      } finally {
        await client.close()
      }
    }
    if (flags.output === undefined) {
      this.log(JSON.stringify(sortedInventory(inventory), null, 2))
      return
    }
    const output = resolvePath(flags.output)
    await writeInventory(output, inventory)
    const summary = {output, kind: inventory.kind, source: inventory.source, images: inventory.images.length, blobs: new Set(inventory.blobs).size, chains: new Set(inventory.chains).size}
    if (flags.json) {
      this.printJson(summary)
      return
    }
    this.log(`wrote ${output}: ${inventory.kind} ${inventory.source}: ${summary.images} images, ${summary.blobs} blobs${summary.chains ? `, ${summary.chains} layer chains` : ''}`)
  }
}
