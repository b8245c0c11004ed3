/**
 * Every kubeferry command, by id: oclif's "explicit" command discovery, which the single file (scripts/package/)
 * uses instead of scanning dist/src/commands, a directory it does not have. There each command of this map is
 * loaded when it runs (scripts/package/build.mjs makes a lazy copy of it). `node bin/run.js` keeps the directory scan
 * (package.json, which skips this file): importing this map would load every command and its imports on each run.
 * A new command file must be added here: test/sea/command-map.test.ts fails until it is.
 */
import Config from './config.js'
import Create from './create.js'
import Diff from './diff.js'
import Images from './images.js'
import Inspect from './inspect.js'
import Inventory from './inventory.js'
import Load from './load.js'
import Push from './push.js'
import Resolve from './resolve.js'
import Serve from './serve.js'
import Sign from './sign.js'
import Verify from './verify.js'

export const COMMANDS = {
  config: Config,
  create: Create,
  diff: Diff,
  images: Images,
  inspect: Inspect,
  inventory: Inventory,
  load: Load,
  push: Push,
  resolve: Resolve,
  serve: Serve,
  sign: Sign,
  verify: Verify,
}
