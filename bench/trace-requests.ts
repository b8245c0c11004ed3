/**
 * A request timeline of one kubeferry command, for finding where its wall time goes: loaded with
 * `node --import ./dist/bench/trace-requests.js bin/run.js …`, it listens on undici's diagnostics channels and
 * writes, at exit, one line per request to $KUBEFERRY_TRACE (ms since the process started: start, headers, end,
 * method, status, path), plus each new connection and each line the command wrote to stderr (its phase notes).
 * `node dist/bench/trace-requests.js FILE` prints a summary of such a file.
 */
import diagnostics from 'node:diagnostics_channel'
import {readFileSync, writeFileSync} from 'node:fs'

interface Row {
  t0: number
  headers?: number
  end?: number
  method: string
  path: string
  status?: number
}

const out = process.env.KUBEFERRY_TRACE
if (out && !process.argv[1]?.endsWith('trace-requests.js')) {
  const rows = new Map<object, Row>()
  const events: string[] = []
  const now = (): number => Number(performance.now().toFixed(1))
  diagnostics.subscribe('undici:request:create', (m) => {
    const {request} = m as {request: {method: string; path: string}}
    rows.set(request, {t0: now(), method: request.method, path: request.path})
  })
  diagnostics.subscribe('undici:request:headers', (m) => {
    const {request, response} = m as {request: object; response: {statusCode: number}}
    const row = rows.get(request)
    if (row) Object.assign(row, {headers: now(), status: response.statusCode})
  })
  diagnostics.subscribe('undici:request:trailers', (m) => {
    const row = rows.get((m as {request: object}).request)
    if (row) row.end = now()
  })
  diagnostics.subscribe('undici:client:connected', () => events.push(`${now()} connected`))
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    events.push(`${now()} stderr ${String(chunk).trim().split('\n')[0]}`)
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest)
  }) as typeof process.stderr.write
  process.on('exit', () => {
    const lines = [...rows.values()].map((r) => `${r.t0} ${r.headers ?? '-'} ${r.end ?? '-'} ${r.method} ${r.status ?? '-'} ${r.path}`)
    writeFileSync(out, [...lines, ...events.map((e) => `# ${e}`), `# ${now()} exit`].join('\n') + '\n')
  })
} else if (process.argv[2]) {
  // Summary: the span of each kind of request, and how many ran at once.
  const text = readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean)
  const kinds = new Map<string, {n: number; first: number; last: number; sum: number}>()
  for (const line of text) {
    if (line.startsWith('#')) {
      process.stdout.write(`${line}\n`)
      continue
    }
    const [t0, , end, method, , path] = line.split(' ')
    const kind = `${method} ${path.includes('/blobs/') ? 'blob' : path.includes('/referrers/') ? 'referrers' : /manifests\/sha256-/.test(path) ? 'artifact tag' : path.endsWith('/tags/list') ? 'tag list' : 'manifest'}`
    const k = kinds.get(kind) ?? {n: 0, first: Infinity, last: 0, sum: 0}
    k.n++
    k.first = Math.min(k.first, Number(t0))
    k.last = Math.max(k.last, Number(end))
    k.sum += Number(end) - Number(t0)
    kinds.set(kind, k)
  }
  for (const [kind, k] of kinds) process.stdout.write(`${kind}: ${k.n} requests, ${k.first.toFixed(0)}–${k.last.toFixed(0)} ms, mean ${(k.sum / k.n).toFixed(1)} ms each\n`)
}
