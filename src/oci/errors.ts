/**
 * One error family for everything an operator may see. `message` is one line that says what failed
 * (naming the image or registry); `hint` says what to do next. Never put secrets in either.
 */
export type ErrorCode =
  | 'INVALID_REFERENCE'
  | 'INVALID_ARGUMENT'
  /** The command line itself is wrong (unknown command or flag, missing argument, unparsable value): exit 2. */
  | 'USAGE'
  | 'UNKNOWN_VERSION'
  | 'NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'NETWORK'
  | 'TLS'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'REGISTRY_ERROR'
  | 'BUNDLE_INVALID'
  | 'NO_SPACE'
  | 'RUNTIME'
  | 'CONFLICT'
  | 'IO'
  | 'INTERNAL'

export class KubeferryError extends Error {
  readonly code: ErrorCode
  readonly hint?: string
  /** Process exit code a command should use for this error. */
  readonly exitCode: number

  constructor(code: ErrorCode, message: string, options: {hint?: string; cause?: unknown; exitCode?: number} = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'KubeferryError'
    this.code = code
    this.hint = options.hint
    this.exitCode = options.exitCode ?? 1
  }

  toJSON(): {code: ErrorCode; message: string; hint?: string} {
    return {code: this.code, message: this.message, ...(this.hint ? {hint: this.hint} : {})}
  }
}

export function isKubeferryError(error: unknown): error is KubeferryError {
  return error instanceof KubeferryError
}

/** One line for the operator from any thrown value (no stack). */
export function describeError(error: unknown): string {
  if (error instanceof KubeferryError) return error.hint ? `${error.message}\n  hint: ${error.hint}` : error.message
  if (error instanceof Error) return error.message.split('\n')[0]
  return String(error)
}
