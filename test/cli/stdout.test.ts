/**
 * Standard output that cannot be written, as operators meet it. `> FILE` on a full disk (/dev/full) is one `error:`
 * line and exit 1, never a stack trace (oclif's own handler rethrew it). A reader that went away (`| head`) is quiet
 * and leaves the exit code alone. Run against both builds (scripts/test.sh SEA_TESTS): the single file answers
 * --version before oclif loads.
 */
import type {ChildProcess} from 'node:child_process'
import {closeSync, existsSync, openSync} from 'node:fs'
import test from 'ava'
import {spawnCli} from '../helpers/cli.js'

const CASES = [['--version'], ['--help'], ['images', '--kubernetes-version', 'v1.31.6'], ['images', '--kubernetes-version', 'v1.31.6', '--json']]

const FULL_DISK =
  'error: cannot write to standard output: no space left on the device\n  hint: free space where the output goes (df -h), or send it elsewhere (> FILE on another disk, | less)\n'

function ended(child: ChildProcess): Promise<{code: number | null; stderr: string}> {
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  return new Promise((resolve) => child.on('close', (code) => resolve({code, stderr})))
}

for (const args of CASES) {
  test(`kubeferry ${args.join(' ')} > /dev/full: one error line, exit 1`, async (t) => {
    if (!existsSync('/dev/full')) return t.fail('no /dev/full on this machine')
    const full = openSync('/dev/full', 'w')
    try {
      const {code, stderr} = await ended(spawnCli(args, {stdio: ['ignore', full, 'pipe']}))
      t.is(code, 1, stderr)
      t.is(stderr, FULL_DISK)
    } finally {
      closeSync(full)
    }
  })

  test(`kubeferry ${args.join(' ')} | a reader that is gone: quiet, exit 0`, async (t) => {
    const child = spawnCli(args, {stdio: ['ignore', 'pipe', 'pipe']})
    // Closed before the process has started: its first write meets EPIPE.
    child.stdout!.destroy()
    const {code, stderr} = await ended(child)
    t.is(stderr, '')
    t.is(code, 0)
  })
}
