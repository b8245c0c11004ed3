/**
 * Every kubeferry command, by id: oclif's "explicit" command discovery (package.json oclif.commands names this file
 * and COMMANDS). oclif reads this map instead of scanning dist/src/commands, which is what lets the single-file build
 * (scripts/package/) carry the commands without a directory on disk. A new command file must be added here:
 * test/sea/command-map.test.ts fails until it is.
 */
import Config from './config.js'
import Create from './create.js'
import Images from './images.js'
import Inspect from './inspect.js'
import Load from './load.js'
import Push from './push.js'
import Resolve from './resolve.js'
import Serve from './serve.js'
import Verify from './verify.js'

export const COMMANDS = {
  config: Config,
  create: Create,
  images: Images,
  inspect: Inspect,
  load: Load,
  push: Push,
  resolve: Resolve,
  serve: Serve,
  verify: Verify,
}
