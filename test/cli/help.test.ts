/**
 * Help like a man page (issue 18, item 8), for every command oclif loads — a new command is covered without touching
 * this file:
 * - every example is a runnable `kubeferry COMMAND …` line: parsed with that command's own parser, so an unknown
 *   flag, a missing argument or a flag value it refuses fails here; in the rendered help each is shown as `$ …`;
 * - `--help` has an EXIT CODES section, and its codes are the table's (src/cli/exit-codes.ts);
 * - no description breaks mid-sentence: at 80 and at 200 columns, a DESCRIPTION line that ends without punctuation
 *   before a line starting in lowercase must be oclif's wrapping (the next word did not fit), never a line break
 *   written into the text;
 * - `kubeferry --help`, `kubeferry help COMMAND` and `kubeferry COMMAND --help` exit 0.
 */
import test from 'ava'
import {EXIT_CODES} from '../../src/cli/exit-codes.js'
import {runCli} from '../helpers/cli.js'
import {commands, type LoadedCommand} from './helpers.js'

const {config, commands: all} = await commands()

/** Words of a shell command line: whitespace-separated, '…' and "…" quoting (enough for help examples). */
export function shellWords(line: string): string[] {
  const words: string[] = []
  let word: string | undefined
  let quote: string | undefined
  for (const char of line) {
    if (quote) {
      if (char === quote) quote = undefined
      else word = (word ?? '') + char
    } else if (char === '"' || char === "'") {
      quote = char
      word ??= ''
    } else if (/\s/.test(char)) {
      if (word !== undefined) words.push(word)
      word = undefined
    } else word = (word ?? '') + char
  }
  if (quote) throw new Error(`unbalanced quote in: ${line}`)
  if (word !== undefined) words.push(word)
  return words
}

/**
 * The argv an example gives `command` — after the last pipe, past leading VAR=value assignments — or an error
 * saying why it is not a `kubeferry COMMAND` line.
 */
export function exampleArgv(example: string, command: LoadedCommand): string[] {
  const words = shellWords(example.split(' | ').at(-1)!)
  while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0])) words.shift()
  const [bin, id, ...argv] = words
  if (bin !== config.bin || id !== command.id) throw new Error(`not a "${config.bin} ${command.id} …" command: ${example}`)
  return argv
}

async function parseExample(example: string, command: LoadedCommand): Promise<void> {
  const parsed = await command.instance(exampleArgv(example, command)).parse()
  // Every required argument was given (oclif refuses a missing one; this says so if that ever changes).
  for (const [name, arg] of Object.entries(command.args)) if (arg.required && parsed.args[name] === undefined) throw new Error(`argument ${name} missing`)
}

test('every command has examples, and the EXIT CODES table has exactly the commands', (t) => {
  t.deepEqual(Object.keys(EXIT_CODES).sort(), all.map((c) => c.id).sort())
  for (const command of all) t.true(command.examples.length >= 2, `${command.id} has ${command.examples.length} example(s)`)
})

test('the example check has teeth: an unknown flag, a missing argument and another command are refused', async (t) => {
  const push = all.find((c) => c.id === 'push')!
  await t.throwsAsync(parseExample(`${config.bin} push k8s.tar registry.corp/k8s --mirror registry.k8s.io=http://m`, push), {message: /unknown flag --mirror/})
  await t.throwsAsync(parseExample(`${config.bin} push k8s.tar`, push), {message: /missing argument REGISTRY/})
  await t.throwsAsync(parseExample(`${config.bin} verify k8s.tar`, push), {message: /not a "kubeferry push/})
  await t.notThrowsAsync(parseExample(`echo "$PASSWORD" | ${config.bin} push k8s.tar registry.corp/k8s --username ci --password-stdin`, push))
})

for (const command of all) {
  test(`${command.id}: every example parses with the command's own parser`, async (t) => {
    for (const example of command.examples) {
      await t.notThrowsAsync(parseExample(example, command), example)
    }
  })
}

/** The lines of one section (its header up to the next header), without the header. */
function section(help: string, header: string): string[] | undefined {
  const lines = help.split('\n')
  const start = lines.indexOf(header)
  if (start < 0) return undefined
  const end = lines.findIndex((l, i) => i > start && /^[A-Z][A-Z ]+$/.test(l))
  return lines.slice(start + 1, end < 0 ? undefined : end)
}

/** Pairs of lines where a sentence goes on across a line break that oclif's wrapping at `width` did not make. */
function midSentenceBreaks(lines: string[], width: number): string[] {
  const bad: string[] = []
  for (let i = 0; i + 1 < lines.length; i++) {
    const line = lines[i].trimEnd()
    const next = lines[i + 1].trim()
    if (!line.trim() || !next) continue
    if (/[.:;!?)]$/.test(line) || !/^[a-z]/.test(next)) continue
    const nextWord = next.split(/\s/)[0]
    // oclif wraps a word onto the next line only when it would not fit on this one.
    if (line.length + 1 + nextWord.length <= width) bad.push(`${line}⏎${next}`)
  }
  return bad
}

for (const width of [80, 200]) {
  for (const command of all) {
    test(`${command.id} --help at ${width} columns: EXIT CODES from the table, $-examples, no mid-sentence break`, async (t) => {
      const r = await runCli([command.id, '--help'], {env: {COLUMNS: String(width), OCLIF_COLUMNS: undefined, NO_COLOR: '1'}})
      t.is(r.code, 0, r.stderr)
      t.is(r.stderr, '')
      const help = r.stdout

      const exitCodes = section(help, 'EXIT CODES')
      t.truthy(exitCodes, `no EXIT CODES section:\n${help}`)
      const codes = (exitCodes ?? []).map((l) => /^ {2}(\d+)\s/.exec(l)?.[1]).filter((c): c is string => c !== undefined).map(Number)
      t.deepEqual(codes, EXIT_CODES[command.id].map((e) => e.code))
      t.true(codes.includes(0) && codes.includes(2), 'success and usage errors are listed')

      const examples = section(help, 'EXAMPLES') ?? []
      const commandLines = examples.filter((l) => l.startsWith('    ') && !l.startsWith('      '))
      t.is(commandLines.length, command.examples.length, examples.join('\n'))
      for (const l of commandLines) t.regex(l, /^ {4}\$ /, 'every example command is shown as "$ command"')
      // The rendered command, its continuation lines joined, is the example itself.
      const shown = examples.join('\n').replaceAll(' \\\n      ', ' ').split('\n').filter((l) => l.startsWith('    $ ')).map((l) => l.slice(6))
      t.deepEqual(shown, command.examples)

      const description = section(help, 'DESCRIPTION')
      t.truthy(description, 'has a DESCRIPTION')
      t.deepEqual(midSentenceBreaks(description ?? [], width), [], 'a description line breaks mid-sentence')
      t.true(help.split('\n').every((l) => l.length <= width), `a line is wider than ${width} columns`)
    })
  }
}

test('descriptions are written as paragraphs: no line break inside one', (t) => {
  for (const c of config.commands) {
    const paragraphs = (c.description ?? '').split('\n\n')
    for (const p of paragraphs) t.false(p.includes('\n'), `${c.id}: a paragraph of its description has a line break: ${JSON.stringify(p.slice(0, 120))}`)
  }
})

test('the mid-sentence check finds a hard-wrapped description and lets oclif wrapping pass', (t) => {
  const hard = ['  Blobs and manifests already in the registry are skipped (a rerun only checks one tag per name), blobs', '  are mounted across repositories where possible.']
  t.is(midSentenceBreaks(hard, 200).length, 1)
  t.is(midSentenceBreaks(hard, 80).length, 0, 'at 80 columns "are" did not fit: that is wrapping')
})

test('kubeferry --help, kubeferry help COMMAND and kubeferry COMMAND --help exit 0', async (t) => {
  const root = await runCli(['--help'])
  t.is(root.code, 0, root.stderr)
  for (const c of all) t.true(root.stdout.includes(c.id), `root help lists ${c.id}`)
  const viaHelp = await runCli(['help', 'push'])
  t.is(viaHelp.code, 0, viaHelp.stderr)
  t.regex(viaHelp.stdout, /^EXIT CODES$/m)
  const load = await runCli(['load', '--help'])
  t.is(load.code, 0, load.stderr)
  t.regex(load.stdout, /^ {2}4 {2}The bundle is missing/m, "load's own codes are in its EXIT CODES")
  t.notRegex(section(load.stdout, 'DESCRIPTION')!.join('\n'), /Exit codes:/, 'the codes are no longer written inline in the description')
})
