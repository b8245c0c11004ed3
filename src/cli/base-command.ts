/**
 * Base of every kubeferry command: turns errors into one operator line (+ hint) on stderr and an exit code, or a
 * `{"error": {...}}` document with --json. A stack trace is shown only with --debug.
 */
import {Command} from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'
import type {Input, ParserOutput} from '@oclif/core/interfaces'
import {describeError, isKubeferryError, KubeferryError} from '../oci/errors.js'
import {debugFromEnvironment} from './debug.js'
import {fromFileSystemError} from './fs-errors.js'
import {guardStdout} from './stdout-guard.js'
import {fromParseError, helpHint, usageError, type CommandShape} from './usage.js'

// After @oclif/core/command (imported above), which installs its own handler when it is loaded.
guardStdout()

// oclif's own (unexported) bounds of parse's type parameters.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type FlagOutput = {[name: string]: any}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ArgOutput = {[name: string]: any}

export abstract class BaseCommand extends Command {
  static override baseFlags = {
    json: Flags.boolean({description: 'Print machine-readable JSON on stdout.', default: false, helpGroup: 'GLOBAL'}),
    debug: Flags.boolean({description: 'Show debug detail (stack traces, HTTP exchanges without secrets).', default: false, helpGroup: 'GLOBAL'}),
  }

  protected get wantsJson(): boolean {
    return this.argv.includes('--json')
  }

  protected get wantsDebug(): boolean {
    return this.argv.includes('--debug') || debugFromEnvironment()
  }

  /** This command as usage errors describe it. */
  protected get shape(): CommandShape {
    const ctor = this.ctor as typeof this.ctor & {args?: CommandShape['args']; flags?: CommandShape['flags']; baseFlags?: CommandShape['flags']}
    return {id: this.id ?? '', bin: this.config.bin, args: ctor.args ?? {}, flags: {...ctor.baseFlags, ...ctor.flags}, strict: ctor.strict}
  }

  /**
   * oclif's parse, with two changes for every command: a repeatable flag takes one value per occurrence
   * (oclif's default lets it swallow every following word, arguments included: `--platform linux/arm64 IMAGE` lost
   * IMAGE), and a missing argument is never read from stdin (oclif's default would take a piped password as the
   * bundle or registry name). Parse errors become one-line usage errors naming the item (exit 2).
   */
  protected override async parse<F extends FlagOutput, B extends FlagOutput, A extends ArgOutput>(options?: Input<F, B, A>, argv: string[] = this.argv): Promise<ParserOutput<F, B, A>> {
    const input = options ?? (this.ctor as unknown as Input<F, B, A>)
    const nonGreedy = <T extends object | undefined>(flags: T): T =>
      (flags && Object.fromEntries(Object.entries(flags).map(([name, flag]) => [name, flag.type === 'option' && flag.multiple ? {...flag, multipleNonGreedy: true} : flag]))) as T
    const args = input.args && Object.fromEntries(Object.entries(input.args).map(([name, arg]) => [name, {...arg, ignoreStdin: true}]))
    this.refuseSwitchValues({...input.baseFlags, ...input.flags}, argv)
    try {
      return await super.parse(
        {strict: input.strict, '--': input['--'], enableJsonFlag: input.enableJsonFlag, constraints: input.constraints, args: args as Input<F, B, A>['args'], flags: nonGreedy(input.flags), baseFlags: nonGreedy(input.baseFlags)},
        argv,
      )
    } catch (error) {
      // The arguments were read (and refused): oclif would otherwise warn "did not parse its arguments" outside production.
      this.parsed = true
      throw fromParseError(error, this.shape, argv) ?? error
    }
  }

  /**
   * `--images=true`, `--verify=false`: oclif takes a switch's `=value` for an argument (serve would look for a bundle
   * named "false"; others named the wrong word as unexpected). Refused here, naming the token.
   */
  private refuseSwitchValues(flags: Record<string, {type?: string; allowNo?: boolean}>, argv: readonly string[]): void {
    for (const token of argv) {
      if (token === '--') return
      const given = /^--([^=]+)=/.exec(token)?.[1]
      if (!given) continue
      const name = flags[given] ? given : given.startsWith('no-') && flags[given.slice(3)]?.allowNo ? given.slice(3) : undefined
      if (name === undefined || flags[name].type !== 'boolean') continue
      this.parsed = true
      throw usageError(`--${given} takes no value, it is a switch: "${token}"`, `give --${name}${flags[name].allowNo ? ` or --no-${name}` : ''} alone; ${helpHint(this.shape)}`)
    }
  }

  /** Print a JSON document on stdout (for --json). */
  protected printJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
  }

  protected warn2(message: string): void {
    process.stderr.write(`warning: ${message}\n`)
  }

  /** The one place every command's errors are written: `error: …` + `  hint: …` (or the JSON document), exit code. */
  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    // oclif's own exits (this.exit(), help) keep their code.
    if (!isKubeferryError(error) && (error as {code?: unknown}).code === 'EEXIT' && error.oclif?.exit !== undefined) {
      process.exitCode = error.oclif.exit
      return
    }
    const kfError = isKubeferryError(error)
      ? fromFileSystemError(error)
      : (fromFileSystemError(error) ?? new KubeferryError('INTERNAL', describeError(error), {hint: 'run again with --debug and report this as a bug'}))
    if (this.wantsJson) this.printJson({error: kfError.toJSON()})
    process.stderr.write(`error: ${describeError(kfError)}\n`)
    if (this.wantsDebug && error.stack) process.stderr.write(`${error.stack}\n`)
    process.exitCode = kfError.exitCode
  }
}
