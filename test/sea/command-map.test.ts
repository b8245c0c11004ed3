/**
 * The explicit command map (src/commands/index.ts), which the single file uses instead of a directory scan, names
 * every command file and nothing else, and agrees with the manifest `npm run build` makes by scanning the directory
 * (package.json oclif.commands, which skips index.js).
 */
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import test from 'ava'
import {COMMANDS} from '../../src/commands/index.js'
import {projectRoot} from '../helpers/cli.js'

const commandFiles = readdirSync(join(projectRoot, 'src', 'commands'))
  .filter((name) => name.endsWith('.ts') && name !== 'index.ts')
  .map((name) => name.replace(/\.ts$/, ''))
  .sort()

test('every file of src/commands is in COMMANDS under its name, and COMMANDS names nothing else', async (t) => {
  t.true(commandFiles.length >= 9, `only ${commandFiles.length} command files found`)
  t.deepEqual(Object.keys(COMMANDS).sort(), commandFiles, 'src/commands/index.ts: add the new command to COMMANDS (or remove the stale entry)')
  for (const id of commandFiles) {
    const module = (await import(`../../src/commands/${id}.js`)) as {default: unknown}
    t.is((COMMANDS as Record<string, unknown>)[id], module.default, `COMMANDS.${id} is the default export of src/commands/${id}.ts`)
  }
})

test('the oclif manifest of the directory scan lists exactly the commands of the map (index.js is not a command)', (t) => {
  const manifest = JSON.parse(readFileSync(join(projectRoot, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
  t.deepEqual(Object.keys(manifest.commands).sort(), Object.keys(COMMANDS).sort())
})
