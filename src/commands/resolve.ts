import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {clientOptionsFromFlags, registryFlags, stderrLog} from '../cli/registry-flags.js'
import {describeError, isKubeferryError, KubeferryError} from '../oci/errors.js'
import {parsePlatform} from '../oci/platform.js'
import {parseReference} from '../oci/reference.js'
import type {ResolvedImage} from '../registry/resolve.js'

type Outcome = {input: string; image?: ResolvedImage; error?: KubeferryError}

export default class Resolve extends BaseCommand {
  static override summary = 'Resolve image references to digests, media types, sizes and platforms.'
  static override description = 'Asks each registry (or its --mirror) for the manifest of every reference and prints what to pin. A reference that fails prints an "error:" line (and a hint) on stderr; the others are still resolved and the exit status is 1.'
  static override examples = [
    {description: 'Digest, media type, size and platforms of one image:', command: '<%= config.bin %> resolve registry.k8s.io/pause:3.10'},
    {description: 'Two images, arm64 only, as JSON:', command: '<%= config.bin %> resolve registry.k8s.io/pause:3.10 registry.k8s.io/etcd:3.5.15-0 --platform linux/arm64 --json'},
    {description: 'Through a local mirror of registry.k8s.io:', command: '<%= config.bin %> resolve registry.k8s.io/kube-proxy:v1.31.6 --mirror registry.k8s.io=http://127.0.0.1:5000'},
  ]
  static override strict = false
  static override args = {reference: Args.string({description: 'Image reference(s), e.g. registry.k8s.io/pause:3.10', required: true})}
  static override flags = {
    platform: Flags.string({description: 'Require this platform (os/arch[/variant], repeatable) and list only those.', multiple: true, helpValue: 'linux/amd64'}),
    ...registryFlags,
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Resolve)
    // Imported here, not at the top: oclif may import every command just to list them (no oclif.manifest.json).
    const [{RegistryClient}, {resolveImage}] = await Promise.all([import('../registry/client.js'), import('../registry/resolve.js')])
    const platforms = (flags.platform ?? []).map((p) => parsePlatform(p))
    const log = stderrLog(flags.debug)
    const client = new RegistryClient(await clientOptionsFromFlags(flags, {log}))
    const outcomes: Outcome[] = []
    try {
      const inputs = argv as string[]
      let next = 0
      const worker = async () => {
        while (next < inputs.length) {
          const i = next++
          const input = inputs[i]
          try {
            outcomes[i] = {input, image: await resolveImage(client, parseReference(input), {platforms})}
          } catch (error) {
            const kf = isKubeferryError(error) ? error : new KubeferryError('INTERNAL', describeError(error), {hint: 'run again with --debug and report this as a bug'})
            if (!isKubeferryError(error) && flags.debug && error instanceof Error) process.stderr.write(`${error.stack}\n`)
            outcomes[i] = {input, error: kf}
          }
        }
      }
      await Promise.all(Array.from({length: Math.min(flags.concurrency, inputs.length)}, worker))
    } finally {
      await client.close()
    }

    // Each failed reference as every command prints an error: "error: REF: …" and "  hint: …".
    for (const o of outcomes) if (o.error) process.stderr.write(`error: ${o.input}: ${describeError(o.error)}\n`)
    if (flags.json) {
      this.printJson(outcomes.map((o) => (o.image ? o.image : {reference: o.input, error: o.error?.toJSON()})))
    } else {
      for (const o of outcomes) {
        if (!o.image) continue
        const {reference, digest, mediaType, size, platforms} = o.image
        this.log(`${reference}\n  digest:     ${digest}\n  media type: ${mediaType}\n  size:       ${size}\n  platforms:  ${platforms.join(', ') || '-'}`)
      }
    }
    if (outcomes.some((o) => o.error)) process.exitCode = 1
  }
}
