/**
 * Error answers in the distribution spec's shape: `{"errors":[{"code","message","detail"}]}` with the spec's codes
 * (NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_INVALID, DIGEST_INVALID, UNSUPPORTED, …).
 */
import type {ServerResponse} from 'node:http'

export type RegistryErrorCode =
  | 'NAME_UNKNOWN'
  | 'NAME_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'BLOB_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'TAG_INVALID'
  | 'PAGINATION_NUMBER_INVALID'
  | 'RANGE_INVALID'
  | 'UNSUPPORTED'
  | 'BAD_REQUEST'

export class RegistryHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: RegistryErrorCode,
    message: string,
    readonly detail?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

export function errorBody(code: RegistryErrorCode, message: string, detail?: unknown): string {
  return JSON.stringify({errors: [{code, message, ...(detail === undefined ? {} : {detail})}]})
}

/** Write a spec error answer (headers only for HEAD, as registries do). Returns the body length written. */
export function sendError(res: ServerResponse, method: string, error: RegistryHttpError): number {
  const body = errorBody(error.code, error.message, error.detail)
  res.statusCode = error.status
  res.setHeader('Content-Type', 'application/json; charset=utf-8')
  res.setHeader('Content-Length', Buffer.byteLength(body))
  for (const [key, value] of Object.entries(error.headers)) res.setHeader(key, value)
  if (method === 'HEAD') {
    res.end()
    return 0
  }
  res.end(body)
  return Buffer.byteLength(body)
}
