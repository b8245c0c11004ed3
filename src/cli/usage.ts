/**
 * Command-line (usage) errors in the project's one-line style. oclif's parser errors are several lines long
 * ("Missing 1 required arg:\nbundle  Bundle file…\nSee more help with --help") and the base command used to keep only
 * the first, which named nothing. Here each is rewritten to name the missing or wrong item, with the command's usage
 * as the hint; exit code 2, as for every usage error.
 */
import {KubeferryError} from '../oci/errors.js'

/** What a usage error needs to know about the command (a subset of an oclif command class). */
export interface CommandShape {
  id: string
  bin: string
  args: Record<string, {description?: string; required?: boolean}>
  flags: Record<string, {type: string; char?: string; multiple?: boolean; description?: string; options?: readonly string[]}>
  strict?: boolean
}

export const USAGE_EXIT = 2

/** `kubeferry push BUNDLE REGISTRY [flags]` — from the command's own args. */
export function usageLine(command: CommandShape): string {
  const args = Object.entries(command.args).map(([name, a]) => (a.required ? name.toUpperCase() : `[${name.toUpperCase()}]`))
  const variadic = command.strict === false && args.length > 0 ? '…' : ''
  return `${command.bin} ${command.id}${args.length ? ` ${args.join(' ')}${variadic}` : ''} [flags]`
}

export function helpHint(command: CommandShape): string {
  return `usage: ${usageLine(command)}; see \`${command.bin} ${command.id} --help\``
}

export function usageError(message: string, hint: string): KubeferryError {
  return new KubeferryError('USAGE', message, {hint, exitCode: USAGE_EXIT})
}

// oclif colours parts of some messages (dim) even when not on a terminal.
// eslint-disable-next-line no-control-regex
const stripAnsi = (text: string): string => text.replace(/\u001B\[[0-9;]*m/g, '')

/** Edit distance, for "did you mean". */
export function distance(a: string, b: string): number {
  const row = Array.from({length: b.length + 1}, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1))
      diagonal = above
    }
  }
  return row[b.length]
}

/** The candidate closest to `word` (or containing it / contained in it), if close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: {name: string; score: number} | undefined
  for (const name of candidates) {
    const score = name.startsWith(word) || word.startsWith(name) ? 0.5 : distance(word, name)
    if (!best || score < best.score) best = {name, score}
  }
  return best && best.score <= Math.max(2, Math.floor(word.length / 3)) ? best.name : undefined
}

function flagLabel(command: CommandShape, name: string): string {
  const char = command.flags[name]?.char
  return char ? `--${name} (-${char})` : `--${name}`
}

function describeArg(command: CommandShape, name: string): string {
  const description = command.args[name]?.description?.replace(/\.$/, '')
  return `${name.toUpperCase()}${description ? ` (${description})` : ''}`
}

/** A repeatable flag the token right before `index` belongs to, if any: `--platform a b` → platform. */
function repeatableBefore(command: CommandShape, argv: readonly string[], value: string): string | undefined {
  const at = argv.indexOf(value)
  for (let i = at - 1; i >= 0 && i >= at - 2; i--) {
    const name = argv[i].replace(/^--?/, '').replace(/=.*$/, '')
    if (argv[i].startsWith('-') && command.flags[name]?.multiple) return name
  }
  return undefined
}

/**
 * The usage error for one of oclif's parse errors, or undefined when `error` is not one (then it is the command's own).
 * `argv` is the command's argv, to point at the token that went wrong.
 */
export function fromParseError(error: unknown, command: CommandShape, argv: readonly string[]): KubeferryError | undefined {
  if (!(error instanceof Error)) return undefined
  const kind = error.constructor.name
  const text = stripAnsi(error.message).replace(/\nSee more help with --help\s*$/, '')
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean)
  const hint = helpHint(command)
  const flagNames = Object.keys(command.flags)
  switch (kind) {
    case 'RequiredArgsError': {
      const missing = ((error as Error & {args?: Array<{name: string}>}).args ?? []).map((a) => a.name)
      const what = missing.map((name) => describeArg(command, name)).join(', ')
      return usageError(`missing argument${missing.length === 1 ? '' : 's'} ${what}`, hint)
    }
    case 'NonExistentFlagsError': {
      const flags = (error as Error & {flags?: string[]}).flags ?? []
      const guesses = flags.map((f) => closest(f.replace(/^--?/, '').replace(/=.*$/, ''), flagNames)).filter((g): g is string => g !== undefined)
      const guess = guesses.length > 0 ? `did you mean --${guesses[0]}? ` : ''
      return usageError(`unknown flag${flags.length === 1 ? '' : 's'} ${flags.join(', ')} for ${command.bin} ${command.id}`, `${guess}${hint}`)
    }
    case 'UnexpectedArgsError': {
      const extras = (error as Error & {args?: string[]}).args ?? []
      const repeatable = extras.map((e) => repeatableBefore(command, argv, e)).find((r) => r !== undefined)
      const how = repeatable ? `give --${repeatable} once per value (--${repeatable} A --${repeatable} B); ` : ''
      return usageError(`unexpected argument${extras.length === 1 ? '' : 's'} ${extras.map((e) => `"${e}"`).join(', ')}: ${command.bin} ${command.id} takes ${Object.keys(command.args).length || 'no'} argument${Object.keys(command.args).length === 1 ? '' : 's'}`, `${how}${hint}`)
    }
    case 'FailedFlagValidationError':
    case 'ViolatedFlagConstraintError': {
      const reasons = lines.slice(1).map((reason) => {
        const missing = /^Missing required flag (\S+)$/.exec(reason)
        if (missing) return `missing required flag ${flagLabel(command, missing[1])}${command.flags[missing[1]]?.description ? ` (${command.flags[missing[1]].description!.replace(/\.$/, '')})` : ''}`
        return reason.charAt(0).toLowerCase() + reason.slice(1)
      })
      return usageError(reasons.join('; ') || lines[0], hint)
    }
    case 'FlagInvalidOptionError': {
      const m = /^Expected --([^=]+)=(.*) to be one of: (.*)$/.exec(lines[0])
      if (m) return usageError(`invalid --${m[1]} "${m[2]}": expected one of ${m[3]}`, hint)
      break
    }
    default:
      break
  }
  // A flag value its parser refused ("Parsing --concurrency \n\tExpected an integer but received: abc").
  const parsing = /^Parsing --(\S+)\s*$/.exec(lines[0] ?? '')
  if (parsing) {
    const reason = (lines[1] ?? 'invalid value').replace(/^Expected/, 'expected')
    return usageError(`invalid --${parsing[1]}: ${reason}`, hint)
  }
  const needsValue = /^Flag --(\S+) expects (?:a value|one of these values: (.*))$/.exec(lines[0] ?? '')
  if (needsValue) return usageError(`--${needsValue[1]} needs a value${needsValue[2] ? ` (one of ${needsValue[2]})` : ''}`, hint)
  const once = /^Flag --(\S+) can only be specified once$/.exec(lines[0] ?? '')
  if (once) return usageError(`--${once[1]} given more than once: it takes one value`, hint)
  if (/Error$/.test(kind) && (error as Error & {oclif?: {exit?: number}}).oclif?.exit === USAGE_EXIT) return usageError(lines.join('; ') || 'invalid command line', hint)
  return undefined
}
