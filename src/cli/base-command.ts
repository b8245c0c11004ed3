/**
 * Base of every kubeferry command: turns errors into one operator line (+ hint) on stderr and an exit code, or a
 * `{"error": {...}}` document with --json. A stack trace is shown only with --debug.
 */
import {Command} from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'
import {describeError, isKubeferryError, KubeferryError} from '../oci/errors.js'

export abstract class BaseCommand extends Command {
  static override baseFlags = {
    json: Flags.boolean({description: 'Print machine-readable JSON on stdout.', default: false, helpGroup: 'GLOBAL'}),
    debug: Flags.boolean({description: 'Show debug detail (stack traces, HTTP exchanges without secrets).', default: false, helpGroup: 'GLOBAL'}),
  }

  protected get wantsJson(): boolean {
    return this.argv.includes('--json')
  }

  protected get wantsDebug(): boolean {
    return this.argv.includes('--debug') || process.env.KUBEFERRY_DEBUG === '1'
  }

  /** Print a JSON document on stdout (for --json). */
  protected printJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
  }

  protected warn2(message: string): void {
    process.stderr.write(`warning: ${message}\n`)
  }

  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    // oclif's own exits (help, version, flag parsing errors) keep their behaviour.
    if (!isKubeferryError(error) && error.oclif?.exit !== undefined) {
      if (error.oclif.exit === 0) return
      process.stderr.write(`error: ${describeError(error)}\n`)
      process.exitCode = error.oclif.exit
      return
    }
    const kfError = isKubeferryError(error) ? error : new KubeferryError('INTERNAL', describeError(error), {hint: 'run again with --debug and report this as a bug'})
    if (this.wantsJson) this.printJson({error: kfError.toJSON()})
    process.stderr.write(`error: ${describeError(kfError)}\n`)
    if (this.wantsDebug && error.stack) process.stderr.write(`${error.stack}\n`)
    process.exitCode = kfError.exitCode
  }
}
