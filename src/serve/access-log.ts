/**
 * One line per request on stderr: `time remote "METHOD path" status bytes ms` (text) or a JSON object per line
 * (`--json`). The path comes from the network, so it is cut to a sane length and control characters are escaped.
 */
export interface AccessRecord {
  time: string
  remote: string
  method: string
  path: string
  status: number
  bytes: number
  ms: number
  userAgent?: string
  /** Why a response was cut short (digest mismatch, client gone). */
  error?: string
}

export type LogSink = (line: string) => void

const MAX_LOGGED_PATH = 512

export function safeLogText(text: string, max = MAX_LOGGED_PATH): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text
  // eslint-disable-next-line no-control-regex
  return cut.replace(/[\x00-\x1f\x7f"\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

export class AccessLog {
  constructor(
    private readonly json: boolean,
    private readonly sink: LogSink = (line) => process.stderr.write(`${line}\n`),
  ) {}

  request(record: AccessRecord): void {
    if (this.json) {
      this.sink(JSON.stringify({...record, path: record.path.slice(0, MAX_LOGGED_PATH), ms: Math.round(record.ms * 10) / 10}))
      return
    }
    const error = record.error ? ` error="${safeLogText(record.error, 200)}"` : ''
    this.sink(`${record.time} ${record.remote} "${record.method} ${safeLogText(record.path)}" ${record.status} ${record.bytes} ${record.ms.toFixed(1)}ms${error}`)
  }

  /** Server events (start, shutdown, warnings). */
  event(level: 'info' | 'warning', message: string, fields: Record<string, unknown> = {}): void {
    if (this.json) this.sink(JSON.stringify({time: new Date().toISOString(), level, message, ...fields}))
    else this.sink(level === 'warning' ? `warning: ${message}` : message)
  }
}
