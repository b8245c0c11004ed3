/** Running the built CLI as an operator would, and judging the outcome of a faulty run. */
import type {ExecutionContext} from 'ava'
import {createHash} from 'node:crypto'
import {createReadStream, existsSync} from 'node:fs'
import {readdir} from 'node:fs/promises'
import {dirname} from 'node:path'
import {projectRoot, runCli as runBuiltCli, type CliOptions, type CliResult} from '../helpers/cli.js'

export {projectRoot}
export type {CliResult}

/** The built CLI (test/helpers/cli.ts) with SOURCE_DATE_EPOCH=0 and no debug output. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return runBuiltCli(args, {timeoutMs: 90_000, ...options, env: {KUBEFERRY_DEBUG: '', SOURCE_DATE_EPOCH: '0', ...options.env}})
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Stack-trace lines as node prints them. */
export const STACK_LINE = /\n\s+at [\w.<>$[\]]+ \(|\n\s+at (file|node):/

/**
 * A failed run must say so clearly: non-zero exit, an `error:` line on stderr matching `pattern`, no stack trace.
 */
export function assertCleanError(t: ExecutionContext, r: CliResult, pattern: RegExp, what: string): void {
  t.not(r.code, 0, `${what}: expected a failure, got exit 0\n${r.stdout}\n${r.stderr}`)
  const errorLine = r.stderr.split('\n').find((l) => l.startsWith('error: '))
  t.truthy(errorLine, `${what}: no "error:" line on stderr:\n${r.stderr}`)
  if (errorLine) t.regex(errorLine, pattern, `${what}: unexpected error line`)
  t.notRegex(r.stderr, STACK_LINE, `${what}: stack trace on stderr`)
  t.notRegex(r.stdout, STACK_LINE, `${what}: stack trace on stdout`)
}

/** Files in the output directory whose names start with the bundle's base name (left-overs, partials). */
export async function leftovers(output: string): Promise<string[]> {
  const dir = dirname(output)
  const base = output.slice(dir.length + 1)
  if (!existsSync(dir)) return []
  return (await readdir(dir)).filter((f) => f.startsWith(base))
}

export type Outcome = 'identical' | 'error'

/**
 * The only two acceptable outcomes of a faulty `create`: exit 0 and the byte-identical bundle, or a clear error and
 * no file under the final name. `expect` narrows it when the case has one right answer.
 */
export async function assertCreateOutcome(
  t: ExecutionContext,
  r: CliResult,
  output: string,
  reference: string,
  options: {expect?: Outcome; error?: RegExp; what: string},
): Promise<Outcome> {
  if (r.code === 0) {
    t.not(options.expect, 'error', `${options.what}: expected an error but create succeeded:\n${r.stdout}\n${r.stderr}`)
    t.true(existsSync(output), `${options.what}: exit 0 but no ${output}`)
    if (!existsSync(output)) return 'identical'
    const sha = await sha256File(output)
    t.is(sha, reference, `${options.what}: create reported success but the bundle differs from the reference`)
    t.regex(r.stdout, new RegExp(`sha256 ${sha}`), `${options.what}: the reported sha256 is not the file's`)
    t.notRegex(r.stderr, STACK_LINE)
    t.false(existsSync(`${output}.partial`), `${options.what}: a .partial file was left beside a complete bundle`)
    return 'identical'
  }
  t.not(options.expect, 'identical', `${options.what}: expected the identical bundle, got exit ${r.code}:\n${r.stderr}`)
  assertCleanError(t, r, options.error ?? /./, options.what)
  t.false(existsSync(output), `${options.what}: failed run left a file under the final name`)
  return 'error'
}
