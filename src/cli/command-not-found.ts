/**
 * oclif `command_not_found` hook: an unknown command gets the project's one-line error with the closest command
 * suggested (or the JSON error document with --json) and exit code 2, instead of oclif's " ›   Error: command x not found".
 * `kubeferry help [COMMAND]` (as with docker and kubectl) shows that help.
 */
import type {Hook} from '@oclif/core/hooks'
import {KubeferryError} from '../oci/errors.js'
import {closest, USAGE_EXIT} from './usage.js'

/** What other tools take for their version (`kubectl version`, `skopeo -v`): the hint names kubeferry's. */
const VERSION_WORDS = new Set(['version', '-v', '-V', '-version'])

const hook: Hook<'command_not_found'> = async function ({argv = [], config, id}) {
  // With topicSeparator " ", oclif joins the words before the first flag into the id: "verfy:x.tar".
  const [first, ...rest] = id.split(':')
  const commands = config.commandIDs.filter((c) => !c.startsWith('_')).sort()
  if (first === 'help' && (rest.length === 0 || commands.includes(rest[0]))) {
    const {loadHelpClass} = await import('@oclif/core/help')
    const Help = await loadHelpClass(config)
    await new Help(config).showHelp(rest.slice(0, 1))
    return
  }
  const word = first === 'help' ? rest[0] : first // `help frob` is about frob
  const asksVersion = VERSION_WORDS.has(word)
  const guess = word.startsWith('-') || asksVersion ? undefined : closest(word, commands)
  const version = asksVersion ? `the version is \`${config.bin} --version\`; ` : ''
  const error = word.startsWith('-')
    ? new KubeferryError('USAGE', `unknown flag ${word} before the command`, {hint: `${version}flags go after the command: ${config.bin} COMMAND [ARGS] [FLAGS]; see \`${config.bin} --help\``, exitCode: USAGE_EXIT})
    : new KubeferryError('USAGE', `unknown command "${word}" for ${config.bin}`, {
        hint: `${version}${guess ? `did you mean \`${config.bin} ${guess}\`? ` : ''}commands: ${commands.join(', ')}; see \`${config.bin} --help\``,
        exitCode: USAGE_EXIT,
      })
  // oclif may drop words from `argv` (it splits the joined id on ":", and "reg:5000/k8s" has one): read the process's.
  if (argv.includes('--json') || process.argv.slice(2).includes('--json')) process.stdout.write(`${JSON.stringify({error: error.toJSON()}, null, 2)}\n`)
  process.stderr.write(`error: ${error.message}\n  hint: ${error.hint}\n`)
  process.exitCode = USAGE_EXIT
}

export default hook
