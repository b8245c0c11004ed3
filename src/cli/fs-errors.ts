/**
 * File-system errors (errno codes) as operator sentences: what happened to which path and what to do. Used by the base
 * command's catch for every command, both for raw Node.js errors (`EROFS: read-only file system, mkdir '/x'`) and for
 * the project's errors that end in a bare code (`cannot open bundle x.tar: ENOENT`).
 */
import {dirname} from 'node:path'
import {KubeferryError} from '../oci/errors.js'

type Errno = NodeJS.ErrnoException & {dest?: string}

/**
 * The file a message says it was reading, with an example path: a directory given for a key is answered with a key
 * file's example, not a bundle's. The message's own words are matched; anything else is taken for a bundle.
 */
const FILES_WANTED: Array<[RegExp, string]> = [
  [/cannot read key \S/, 'the PEM key file itself (e.g. DIR/cosign.pub, or DIR/signer.key to sign)'],
  [/cannot read image policy \S/, 'the JSON policy file itself (e.g. DIR/image-policy.json)'],
  [/cannot read trusted root \S/, 'the trusted root JSON itself (e.g. DIR/trusted_root.json)'],
  [/cannot read --images-file \S/, 'the images list itself (e.g. DIR/images.txt)'],
  [/cannot read TLS certificate \S/, 'the PEM certificate itself (e.g. DIR/mirror.crt)'],
  [/cannot read TLS key \S/, 'the PEM private key itself (e.g. DIR/mirror.key)'],
]

function fileWanted(message: string | undefined): string {
  return FILES_WANTED.find(([pattern]) => message !== undefined && pattern.test(message))?.[1] ?? 'a file (e.g. DIR/k8s.tar)'
}

const KNOWN: Record<string, {reason: string; hint: (path: string | undefined, message?: string) => string}> = {
  ENOENT: {reason: 'no such file or directory', hint: (p) => `check the path${p ? ` (ls -ld ${dirname(p)})` : ''}`},
  EACCES: {reason: 'permission denied', hint: (p) => `check the owner and permissions${p ? ` of ${p} and its directory (ls -ld ${p} ${dirname(p)})` : ''}, or run as a user who may use it`},
  EPERM: {reason: 'operation not permitted', hint: (p) => `check the owner, permissions and attributes${p ? ` of ${p} (ls -ld ${p}; lsattr)` : ''}`},
  EROFS: {reason: 'read-only file system', hint: () => 'choose a location on a writable file system (e.g. under /tmp or your home), or remount it read-write'},
  ENOTDIR: {reason: 'a part of the path is a file, not a directory', hint: (p) => `check the path${p ? ` ${p}` : ''}: every part before the last must be a directory`},
  EISDIR: {reason: 'is a directory, not a file', hint: (_path, message) => `give the path of ${fileWanted(message)}, not of a directory`},
  // Not an errno: what the readers that want a regular file say of a device (/dev/null), pipe or socket.
  ENOTREG: {reason: 'not a regular file (a device, pipe or socket)', hint: () => 'give the path of a regular file (not /dev/null, a device, a pipe or <(…))'},
  ENOSPC: {reason: 'no space left on the device', hint: (p) => `free space there (df -h ${p ? dirname(p) : '.'}) or choose a location with more space`},
  EDQUOT: {reason: 'disk quota exceeded', hint: (p) => `free space within your quota (quota -s) or choose another location${p ? ` than ${dirname(p)}` : ''}`},
  EEXIST: {reason: 'already exists', hint: (p) => `remove ${p ?? 'it'} or choose another path`},
  ENOTEMPTY: {reason: 'directory not empty', hint: (p) => `remove what is in ${p ?? 'it'} or choose another path`},
  EMFILE: {reason: 'too many open files', hint: () => 'raise the limit (ulimit -n 4096) and run again'},
  ENFILE: {reason: 'too many open files on this system', hint: () => 'close other programs or raise fs.file-max, then run again'},
  ENAMETOOLONG: {reason: 'file name too long', hint: () => 'choose a shorter path'},
  ELOOP: {reason: 'too many symbolic links', hint: (p) => `check the symbolic links in ${p ?? 'the path'} (ls -l)`},
  EBUSY: {reason: 'busy (in use by another process)', hint: (p) => `find what uses it (fuser -v ${p ?? 'PATH'}) and run again`},
  EIO: {reason: 'input/output error (the disk or medium failed)', hint: () => 'check the device (dmesg); copy the file to another disk'},
  EXDEV: {reason: 'cannot move across file systems', hint: () => 'keep the output and its temporary file on the same file system'},
}

const VERBS: Record<string, string> = {
  open: 'open',
  read: 'read',
  write: 'write',
  mkdir: 'create directory',
  rmdir: 'remove directory',
  unlink: 'remove',
  rename: 'rename',
  stat: 'read',
  lstat: 'read',
  fstat: 'read',
  scandir: 'list directory',
  opendir: 'list directory',
  copyfile: 'copy',
  access: 'access',
  chmod: 'change mode of',
  fsync: 'write',
  ftruncate: 'write',
  symlink: 'create link',
  link: 'create link',
}

export function isFileSystemError(error: unknown): error is Errno {
  return error instanceof Error && typeof (error as Errno).code === 'string' && (error as Errno).code! in KNOWN && typeof (error as Errno).syscall === 'string'
}

/** The sentence for an errno code ("permission denied"), or undefined for a code not known here. */
export function errnoReason(code: string): string | undefined {
  return KNOWN[code]?.reason
}

/**
 * A raw file-system error → KubeferryError naming the path and what to do; a KubeferryError ending in a bare errno
 * code → the same error with the code spelled out (and the code's hint when it had none or a generic one);
 * anything else → undefined (or the KubeferryError unchanged).
 */
export function fromFileSystemError(error: KubeferryError): KubeferryError
export function fromFileSystemError(error: unknown): KubeferryError | undefined
export function fromFileSystemError(error: unknown): KubeferryError | undefined {
  if (error instanceof KubeferryError) {
    const bare = /^(.*): (E[A-Z]+)$/.exec(error.message)
    const known = bare && KNOWN[bare[2]]
    if (!bare || !known) return error
    const cause = error.cause as Errno | undefined
    const path = typeof cause?.path === 'string' ? cause.path : undefined
    const generic = !error.hint || /^check the path|permissions$/.test(error.hint)
    return new KubeferryError(bare[2] === 'ENOSPC' || bare[2] === 'EDQUOT' ? 'NO_SPACE' : error.code, `${bare[1]}: ${known.reason}`, {
      hint: generic || bare[2] !== 'ENOENT' ? known.hint(path, bare[1]) : error.hint,
      cause: error.cause,
      exitCode: error.exitCode,
    })
  }
  if (!isFileSystemError(error)) return undefined
  const known = KNOWN[error.code!]
  const verb = VERBS[error.syscall!] ?? error.syscall
  const target = error.path ? ` ${error.path}${error.dest ? ` to ${error.dest}` : ''}` : ''
  return new KubeferryError(error.code === 'ENOSPC' || error.code === 'EDQUOT' ? 'NO_SPACE' : 'IO', `cannot ${verb}${target}: ${known.reason}`, {hint: known.hint(error.path), cause: error})
}
