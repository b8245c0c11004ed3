import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {formatBytes} from '../ui/progress.js'

export default class Verify extends BaseCommand {
  static override summary = 'Check a bundle offline: structure, every blob\'s digest and size, references, manifest.json, checksums.'
  static override description = [
    'Reads the whole bundle once, streaming. Every problem found is listed (not just the first); the exit code is 0 only',
    'when all checks hold. --quick checks structure, sizes and references without hashing the layers.',
  ].join('\n')
  static override examples = ['<%= config.bin %> verify k8s-v1.31.6.tar', '<%= config.bin %> verify k8s.tar --json']
  static override args = {bundle: Args.string({description: 'Bundle file (.tar).', required: true})}
  static override flags = {
    quick: Flags.boolean({description: 'Skip hashing blob contents (structure, sizes and references only).', default: false}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Verify)
    const {verifyBundle} = await import('../bundle/verify.js') // not at the top: oclif may import every command to list them
    const result = await verifyBundle(args.bundle, {quick: flags.quick})
    if (flags.json) {
      this.printJson(result)
    } else if (result.ok) {
      this.log(`${args.bundle}: OK (${result.images} images, ${result.blobs} blobs${flags.quick ? ', contents not hashed' : `, ${formatBytes(result.bytesHashed)} hashed`})`)
    } else {
      for (const problem of result.problems) process.stderr.write(`${args.bundle}: ${problem.kind}: ${problem.message}\n`)
      process.stderr.write(`${args.bundle}: FAILED: ${result.problems.length} problem(s)\n  hint: copy the bundle again from its source (compare its .sha256) or rebuild it with kubeferry create\n`)
    }
    if (!result.ok) process.exitCode = 1
  }
}
