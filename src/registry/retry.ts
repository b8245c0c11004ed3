/** Retry policy for registry requests: bounded exponential backoff with jitter, honouring Retry-After. */
export interface RetryOptions {
  /** Total tries including the first (default 5). */
  attempts?: number
  baseDelayMs?: number
  maxDelayMs?: number
}

export interface RetryPolicy {
  attempts: number
  baseDelayMs: number
  maxDelayMs: number
}

/** A server may ask for more than our own backoff ceiling, but never for more than this. */
const RETRY_AFTER_CAP_MS = 60_000

export function retryPolicy(options: RetryOptions = {}): RetryPolicy {
  return {
    attempts: Math.max(1, options.attempts ?? 5),
    baseDelayMs: Math.max(0, options.baseDelayMs ?? 250),
    maxDelayMs: Math.max(0, options.maxDelayMs ?? 10_000),
  }
}

/** HTTP statuses worth another try: timeouts, rate limits and server errors (not 501: it never changes). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501)
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
])

/** The low-level error code of a network failure (looks through undici's `cause` chain). */
export function networkErrorCode(error: unknown): string | undefined {
  let e: unknown = error
  for (let i = 0; i < 5 && e && typeof e === 'object'; i++) {
    const code = (e as {code?: unknown}).code
    if (typeof code === 'string' && code !== '') {
      // undici wraps some socket errors; prefer the inner errno-style code when there is one.
      const inner = (e as {cause?: {code?: unknown}}).cause?.code
      return typeof inner === 'string' && inner !== '' ? inner : code
    }
    e = (e as {cause?: unknown}).cause
  }
  return undefined
}

/** Connection-level failures that may succeed on another try. Unknown hosts (ENOTFOUND) do not. */
export function isRetryableNetworkError(error: unknown): boolean {
  const code = networkErrorCode(error)
  return code !== undefined && RETRYABLE_CODES.has(code)
}

/** Parse Retry-After (delta seconds or an HTTP date) into milliseconds from `now`. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value
  if (text === undefined || text.trim() === '') return undefined
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const when = Date.parse(trimmed)
  if (Number.isNaN(when)) return undefined
  return Math.max(0, when - now)
}

/** Delay before try number `attempt` (1 = first retry): half fixed, half random within an exponential window, or the server's Retry-After. */
export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, Math.max(policy.maxDelayMs, RETRY_AFTER_CAP_MS))
  const window = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  return Math.round(window / 2 + Math.random() * (window / 2))
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
