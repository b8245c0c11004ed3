/**
 * The single file's code (bundled by scripts/package/build.mjs into dist/sea/kubeferry.cjs, carried by each
 * dist/sea/kubeferry-linux-ARCH as an asset that boot.cjs compiles and runs). What bin/run.js does (compile.cjs
 * sets Liftoff only), without a package directory on disk: package.json, the oclif manifest and the files the code
 * reads beside itself (install.sh's parts) are embedded, served under ROOT, a directory that does not exist; oclif
 * finds the commands from the explicit map (src/commands/index.ts; each command loaded when it runs), the hooks
 * and the help class through scripts/package/module-loader.cjs.
 */
import fs from 'node:fs'
import {join} from 'node:path'
import {settings} from '@oclif/core/settings'
import {execute} from '@oclif/core/execute'
import ROOT from 'kubeferry:root'
import EMBEDDED from 'kubeferry:embedded'
import PJSON from 'kubeferry:pjson'
import {guardStdout} from '../../dist/src/cli/stdout-guard.js'

/** Answer reads of ROOT/… from the embedded files; anything else goes to the real file system. */
function serveEmbedded() {
  const files = new Map(Object.entries(EMBEDDED).map(([name, text]) => [join(ROOT, name), text]))
  const lookup = (path) => {
    if (typeof path === 'string') return files.get(path)
    if (path instanceof URL && path.protocol === 'file:') return files.get(decodeURIComponent(path.pathname))
    return undefined
  }
  const enoent = (path) => Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), {code: 'ENOENT', errno: -2, syscall: 'open', path: String(path)})
  const asked = (text, options) => ((typeof options === 'string' ? options : options?.encoding) ? text : Buffer.from(text))
  const readFileSync = fs.readFileSync
  fs.readFileSync = function (path, options) {
    const text = lookup(path)
    if (text !== undefined) return asked(text, options)
    if (typeof path === 'string' && path.startsWith(`${ROOT}/`)) throw enoent(path)
    return readFileSync.apply(this, arguments)
  }
  const readFile = fs.promises.readFile
  fs.promises.readFile = async function (path, options) {
    const text = lookup(path)
    if (text !== undefined) return asked(text, options)
    if (typeof path === 'string' && path.startsWith(`${ROOT}/`)) throw enoent(path)
    return readFile.apply(this, arguments)
  }
}

async function main() {
  serveEmbedded()
  // As bin/run.js: standard output that cannot be written is one error line, not a stack trace.
  guardStdout()
  // No TypeScript source next to a single file: skip oclif's search for one (it reads tsconfig.json from disk).
  settings.enableAutoTranspile = false
  await execute({loadOptions: {root: ROOT, pjson: PJSON}})
}

// execute() reports its own errors; CommonJS (what boot.cjs runs) has no top-level await.
void main()
