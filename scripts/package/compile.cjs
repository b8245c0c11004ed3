/**
 * How the single file's code is compiled, the same in the file (boot.cjs) and at build time (make-cache.cjs): a V8
 * code cache is accepted only for the same source text, V8 version and V8 flags it was made with (so no V8 flag is
 * set before this: src/registry/undici-agent.ts sets its own later).
 */
'use strict'
const vm = require('node:vm')

/** Where the bundled script says it is, in stack traces. */
const FILENAME = '/kubeferry.sea/kubeferry.cjs'

/** Compile dist/sea/kubeferry.cjs (`source`) as a CommonJS module body, with `cachedData` when given. */
function compile(source, cachedData) {
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {filename: FILENAME, cachedData})
  const run = (require, filename, dirname) => {
    const module = {exports: {}}
    script.runInThisContext()(module.exports, require, module, filename, dirname)
  }
  return {script, run}
}

module.exports = {compile, FILENAME}
