/**
 * kubeferry's help (package.json oclif.helpClass): oclif's, with three changes that make it read like a man page.
 * - An EXIT CODES section after DESCRIPTION, from the one table in exit-codes.ts.
 * - Every example command is shown as `$ command` — also one that starts with a pipe or an environment variable
 *   (oclif prefixes only lines that start with the binary's name) — under its one-line description.
 * - The width follows COLUMNS when it is set (oclif reads only OCLIF_COLUMNS or the terminal), so
 *   `COLUMNS=200 kubeferry push --help` and a pipe into `less` can be as wide as the reader wants.
 * Descriptions are written as paragraphs (one string each, joined by blank lines): the only line breaks inside a
 * paragraph are the ones this help's wrapping makes at the current width.
 */
import {CommandHelp, Help} from '@oclif/core/help'
import type {Command} from '@oclif/core/command'
import type {Config, HelpOptions} from '@oclif/core/interfaces'
import {exitCodesOf} from './exit-codes.js'

/** The width asked for with OCLIF_COLUMNS or COLUMNS, if any (oclif's own default otherwise). */
export function helpWidth(env: NodeJS.ProcessEnv = process.env): number | undefined {
  for (const name of ['OCLIF_COLUMNS', 'COLUMNS']) {
    const width = Number.parseInt(env[name] ?? '', 10)
    if (Number.isFinite(width) && width >= 40) return width
  }
  return undefined
}

/** The shell command of an example, whatever form it was written in. */
export function exampleCommand(example: Command.Example): string {
  return typeof example === 'string' ? example : example.command
}

/** oclif's lists (flags, exit codes) run 2 columns past the width when they switch to one entry per paragraph. */
function renderListWithin<T extends CommandHelp>(help: T, render: () => string): string {
  const width = help.opts.maxWidth
  help.opts.maxWidth = width - 2
  try {
    return render()
  } finally {
    help.opts.maxWidth = width
  }
}

class KubeferryCommandHelp extends CommandHelp {
  override renderList(...args: Parameters<CommandHelp['renderList']>): string {
    return renderListWithin(this, () => super.renderList(...args))
  }

  protected override sections(): ReturnType<CommandHelp['sections']> {
    const sections = super.sections()
    const at = sections.findIndex((s) => s.header === 'DESCRIPTION')
    const exitCodes = {
      header: 'EXIT CODES',
      // A list of sections (oclif's form for a table): one, headed EXIT CODES, code | meaning.
      generate: (_input: unknown, header: string) => {
        const rows = exitCodesOf(this.command.id)
        return rows ? [{header, body: rows.map((r) => ({name: String(r.code), description: r.meaning}))}] : undefined
      },
    }
    sections.splice(at < 0 ? sections.length : at + 1, 0, exitCodes)
    return sections
  }

  protected override examples(examples: Command.Example[] | string | undefined): string | undefined {
    if (!examples || examples.length === 0) return undefined
    const list = typeof examples === 'string' ? [examples] : examples
    const indent = this.indentSpacing * 2
    return list
      .map((example) => {
        const description = typeof example === 'string' ? undefined : example.description
        // A long command goes on over several lines, each but the last ending in " \", as a shell reads it.
        const command = this.indent(this.wrap(`$ ${this.render(exampleCommand(example))}`, indent + 4))
          .split('\n')
          .join(' \\\n  ')
        return description ? `${this.wrap(description, indent)}\n\n${command}` : command
      })
      .join('\n\n')
  }
}

export default class KubeferryHelp extends Help {
  constructor(config: Config, opts: Partial<HelpOptions> = {}) {
    const width = helpWidth()
    super(config, width ? {...opts, maxWidth: width} : opts)
    this.CommandHelpClass = KubeferryCommandHelp
  }

  /** oclif's, with the summary on top wrapped to the width like the rest (kubeferry's commands have no topics). */
  override async showCommandHelp(command: Command.Loadable): Promise<void> {
    const summary = this.summary(command)
    if (summary) this.log(`${this.wrap(summary, 0)}\n`)
    this.log(this.formatCommand(command))
    this.log('')
  }
}
