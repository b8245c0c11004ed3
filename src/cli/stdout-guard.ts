/**
 * Standard output that cannot be written: `> FILE` on a full file system, a failing device, a descriptor closed
 * under the command. oclif's own handler (@oclif/core command.js) rethrows anything but EPIPE, which Node.js prints
 * as a stack trace. Here: one `error:` line saying why and what to do, once, and exit code 1. The command is not cut
 * short (it may be writing a bundle, which must not be left half-written); what it prints after that is lost.
 * A reader that went away (`| head`) is not an error, as with oclif: the rest of the output is dropped.
 */
import {errnoReason} from './fs-errors.js'

let reported = false

export function onStdoutError(error: NodeJS.ErrnoException): void {
  if (error.code === 'EPIPE' || reported) return
  reported = true
  const reason = (error.code && errnoReason(error.code)) || error.code || error.message
  const where = error.code === 'ENOSPC' || error.code === 'EDQUOT' ? 'free space where the output goes (df -h)' : 'check where the output goes'
  process.stderr.write(`error: cannot write to standard output: ${reason}\n  hint: ${where}, or send it elsewhere (> FILE on another disk, | less)\n`)
  if (!process.exitCode) process.exitCode = 1
}

/** Put onStdoutError in the place of oclif's handler: call once @oclif/core/command is loaded (it adds its own then). */
export function guardStdout(): void {
  process.stdout.removeAllListeners('error')
  process.stdout.on('error', onStdoutError)
}
