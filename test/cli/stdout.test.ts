/**
 * Standard output that cannot be written, as operators meet it. `> FILE` on a full disk (/dev/full) is one `error:`
 * line and exit 1, never a stack trace (oclif's own handler rethrew it). A reader that went away (`| head`) is quiet
 * and leaves the exit code alone. Run against both builds (scripts/test.sh SEA_TESTS): the single file answers
 * --version before oclif loads.
 */
import {closeSync, existsSync, openSync} from 'node:fs'
import test from 'ava'
import {runCli} from '../helpers/cli.js'

const CASES = [['--version'], ['--help'], ['images', '--kubernetes-version', 'v1.31.6'], ['images', '--kubernetes-version', 'v1.31.6', '--json']]

const FULL_DISK =
  'error: cannot write to standard output: no space left on the device\n  hint: free space where the output goes (df -h), or send it elsewhere (> FILE on another disk, | less)\n'

for (const args of CASES) {
  test(`kubeferry ${args.join(' ')} > /dev/full: one error line, exit 1`, async (t) => {
    if (!existsSync('/dev/full')) return t.fail('no /dev/full on this machine')
    const full = openSync('/dev/full', 'w')
    try {
      const {code, stderr} = await runCli(args, {stdoutFd: full})
      t.is(code, 1, stderr)
      t.is(stderr, FULL_DISK)
    } finally {
      closeSync(full)
    }
  })

  test(`kubeferry ${args.join(' ')} | a reader that is gone: quiet, exit 0`, async (t) => {
    // Closed before the process has started: its first write meets EPIPE.
    const {code, stderr} = await runCli(args, {onSpawn: (child) => child.stdout!.destroy()})
    t.is(stderr, '')
    t.is(code, 0)
  })
}
