#!/usr/bin/env node
import {readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'
import module from 'node:module'
import {fileURLToPath} from 'node:url'

// Node >= 22.1 keeps the compiled code of kubeferry and its dependencies between runs (in the OS temp dir), which
// takes a good part of the start-up time off every command. Node 20 has no such cache: a no-op there. Called before
// oclif is imported so that oclif itself is cached too.
module.enableCompileCache?.()

// V8's --liftoff-only is set when undici is loaded (src/registry/undici-agent.ts), not here: see there.

const root = fileURLToPath(new URL('..', import.meta.url))

/** Newest mtime (ms) of the files under `dir`, 0 when it does not exist. */
function newest(dir) {
  let latest = 0
  let entries
  try {
    entries = readdirSync(dir, {withFileTypes: true})
  } catch {
    return 0
  }
  for (const entry of entries) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

/**
 * oclif.manifest.json (written by `npm run build`, see scripts/oclif-manifest.mjs) spares oclif importing every
 * command at start-up, but oclif trusts it blindly: after a bare `tsc` it would describe old flags. Trust it only
 * when it is newer than everything it was made from.
 */
function staleManifest() {
  let made
  try {
    made = statSync(join(root, 'oclif.manifest.json')).mtimeMs
  } catch {
    return false // none: oclif reads the commands themselves
  }
  return made < statSync(join(root, 'package.json')).mtimeMs || made < newest(join(root, 'dist', 'src'))
}

// Standard output that cannot be written (a full disk) is one error line, not a stack trace (see there).
const {guardStdout} = await import('../dist/src/cli/stdout-guard.js')
guardStdout()
// Subpath imports: oclif's index loads every part of oclif (help, ux, …) whether the command needs it or not.
const {execute} = await import('@oclif/core/execute')
if (!staleManifest()) {
  await execute({dir: import.meta.url})
} else {
  const {Plugin} = await import('@oclif/core/config')
  const plugin = new Plugin({root, isRoot: true, ignoreManifest: true})
  await plugin.load()
  await execute({loadOptions: {root, plugins: new Map([[plugin.name, plugin]])}})
}
