/**
 * Flags in any position, as operators type them (`kubeferry push --insecure-registry reg:5000 k8s.tar reg:5000/k8s`).
 * Generated from the commands' own flag definitions: every repeatable flag (multiple: true) of every command is given
 * twice — before, between and after the arguments, as `--flag v` and `--flag=v` — and both its values and every
 * argument must be taken. A new repeatable flag is covered without touching this file.
 * Part one parses in-process with the command's own parser (every combination); part two runs the built CLI for the
 * commands that take arguments and checks the error names the argument (it was taken, not swallowed by the flag).
 */
import test from 'ava'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {commands, kubeferry, type FlagDef, type LoadedCommand} from './helpers.js'

const {commands: all} = await commands()

/** Two values the flag accepts (its options, or two distinct strings that look like what it takes). */
function twoValues(name: string, flag: FlagDef): [string, string] {
  if (flag.options && flag.options.length >= 2) return [flag.options[0], flag.options[1]]
  return SAMPLES[name] ?? [`${name}-one`, `${name}-two`]
}

/** Values that also pass the commands' own checks after parsing (for the end-to-end half). */
const SAMPLES: Record<string, [string, string]> = {
  platform: ['linux/arm64', 'linux/amd64'],
  mirror: ['registry.k8s.io=http://127.0.0.1:9', 'docker.io=http://127.0.0.1:9'],
  'insecure-registry': ['reg.example:5000', 'other.example:5000'],
  map: ['docker.io/bitnami=third-party/bitnami', 'quay.io/cilium=cilium'],
  runtime: ['containerd@1.7', 'cri-o@1.30'],
  upstream: ['quay.io', 'ghcr.io'],
  namespace: ['default', 'kube-system'],
}

/** What the command needs besides the flag under test: its required flags (a value each) and its arguments. */
function requiredFlags(command: LoadedCommand, except: string): string[] {
  return Object.entries(command.flags)
    .filter(([name, f]) => f.required && name !== except)
    .flatMap(([name, f]) => [`--${name}`, f.options?.[0] ?? `${name}-value`])
}

function argValues(command: LoadedCommand): string[] {
  const names = Object.keys(command.args)
  // A command with a variadic last argument (strict: false) gets two values for it.
  const values = names.map((name) => `ARG-${name}`)
  return command.strict ? values : [...values, `ARG-${names.at(-1)}-2`]
}

type Form = 'space' | 'equals'
const give = (name: string, value: string, form: Form): string[] => (form === 'space' ? [`--${name}`, value] : [`--${name}=${value}`])

/** The argv with the flag's two occurrences at `where` relative to the arguments. */
function layout(args: string[], flag: [string[], string[]], where: 'before' | 'between' | 'after' | 'around'): string[] {
  const [first, second] = flag
  switch (where) {
    case 'before':
      return [...first, ...second, ...args]
    case 'after':
      return [...args, ...first, ...second]
    case 'around':
      return [...first, ...args, ...second]
    case 'between':
      return [args[0], ...first, ...args.slice(1, 2), ...second, ...args.slice(2)]
  }
}

const cases = all.flatMap((command) =>
  Object.entries(command.flags)
    .filter(([, f]) => f.type === 'option' && f.multiple)
    .map(([name, flag]) => ({command, name, flag})),
)

test('there are repeatable flags to test (the table is not empty)', (t) => {
  t.true(cases.length >= 10, cases.map((c) => `${c.command.id} --${c.name}`).join(', '))
  t.true(cases.some((c) => Object.keys(c.command.args).length > 0), 'some command with arguments has a repeatable flag')
})

for (const {command, name, flag} of cases) {
  test(`${command.id} --${name}: both values and every argument are taken, wherever the flag is`, async (t) => {
    const values = twoValues(name, flag)
    const args = argValues(command)
    const wheres = args.length === 0 ? (['before'] as const) : args.length === 1 ? (['before', 'after', 'around'] as const) : (['before', 'between', 'after', 'around'] as const)
    for (const where of wheres) {
      for (const form of ['space', 'equals'] as const) {
        const argv = [...layout(args, [give(name, values[0], form), give(name, values[1], form)], where), ...requiredFlags(command, name)]
        const what = `kubeferry ${command.id} ${argv.join(' ')}`
        let parsed
        try {
          parsed = await command.instance(argv).parse()
        } catch (error) {
          t.fail(`${what}: ${(error as Error).message}`)
          continue
        }
        t.deepEqual(parsed.flags[name], values, what)
        for (const [i, argName] of Object.keys(command.args).entries()) t.is(parsed.args[argName], args[i], `${what}: argument ${argName}`)
        t.deepEqual(parsed.argv, args, `${what}: all arguments, in order`)
      }
    }
  })
}

// End to end through bin/run.js: the arguments reach the command (its error names the nonexistent bundle or the
// malformed reference given as an argument), the flag's values pass its own checks.
const withArgs = cases.filter((c) => Object.keys(c.command.args).length > 0)
let dir: string
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kf-flag-positions-'))
})
test.after.always(async () => {
  await rm(dir, {recursive: true, force: true})
})

for (const {command, name, flag} of withArgs) {
  test(`kubeferry ${command.id} --${name} before and between the arguments: the command gets its arguments`, async (t) => {
    const values = twoValues(name, flag)
    // The first argument is what the command reads first: a bundle path that does not exist, or an invalid reference.
    const first = command.args.bundle ? join(dir, 'no-such-bundle.tar') : 'Bad::Reference'
    const rest = Object.keys(command.args).slice(1).map((n) => (n === 'registry' ? 'reg.example:5000/k8s' : `ARG-${n}`))
    for (const where of ['before', 'between'] as const) {
      const argv = [command.id, ...layout([first, ...rest], [give(name, values[0], 'space'), give(name, values[1], 'space')], where)]
      const r = await kubeferry(argv)
      const what = `kubeferry ${argv.join(' ')}`
      t.is(r.code, command.id === 'load' ? 4 : 1, `${what}\n${r.stderr}`) // load: install.sh's codes (4: bad bundle)
      t.notRegex(r.stderr, /missing argument|unexpected argument|Missing \d required arg/i, what)
      t.true(r.stderr.includes(first), `${what}: the error names the argument\n${r.stderr}`)
    }
  })
}
