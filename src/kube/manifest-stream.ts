/**
 * Kubernetes manifests decoded the way kubectl reads `-f FILE` (apimachinery pkg/util/yaml YAMLOrJSONDecoder):
 *  - text whose first non-space character is `{` is a stream of JSON objects, back to back or on separate lines
 *    (`kubectl create --dry-run=client -o json` prints `{…}{…}` for several objects); if the first or second
 *    object does not decode as JSON, the rest is read as YAML (a YAML flow mapping such as `{kind: Pod}` is not
 *    JSON); after two JSON objects a failure is an error;
 *  - otherwise YAML documents separated by `---`, decoded as sigs.k8s.io/yaml does (go-yaml v2): a duplicated map
 *    key keeps its last value (reported as a warning), `<<` merge keys are applied.
 * Errors name the file and line of the unreadable document.
 */
import {isScalar, LineCounter, parseAllDocuments, visit} from 'yaml'
import {KubeferryError} from '../oci/errors.js'

export interface ManifestDocument {
  value: unknown
  /** 1-based line of the document's first character in the file. */
  line: number
}

export interface DecodedManifests {
  documents: ManifestDocument[]
  /** `deploy.yaml:12: duplicate key "image" …` */
  warnings: string[]
}

const HINT = 'fix that document (kubectl reads YAML documents separated by --- or JSON objects one after another); render charts with helm template first'

function unreadable(origin: string, line: number, what: string, reason: string): KubeferryError {
  return new KubeferryError('INVALID_ARGUMENT', `${origin}:${line}: invalid ${what}: ${reason}`, {hint: HINT})
}

function skipSpace(text: string, from: number): number {
  let at = from
  while (at < text.length && /\s/.test(text[at])) at++
  return at
}

/** Line (1-based) of an offset in `text`: binary search over its newline offsets. */
function lineFinder(text: string): (offset: number) => number {
  const newlines: number[] = []
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) newlines.push(i)
  return (offset) => {
    let low = 0
    let high = newlines.length
    while (low < high) {
      const mid = (low + high) >> 1
      if (newlines[mid] < offset) low = mid + 1
      else high = mid
    }
    return low + 1
  }
}

/**
 * End (exclusive) of the bracketed JSON value opening at `start`, skipping strings: where its brackets balance, or
 * just past a closing bracket that does not match (JSON.parse then says where); -1 if it never closes.
 */
function jsonValueEnd(text: string, start: number): number {
  const open: string[] = []
  let inString = false
  for (let i = start; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') inString = false
    } else if (c === '"') inString = true
    else if (c === '{') open.push('}')
    else if (c === '[') open.push(']')
    else if (c === '}' || c === ']') {
      if (open.pop() !== c || open.length === 0) return i + 1
    }
  }
  return -1
}

/**
 * Offset of the first character that breaks JSON's grammar in `text` (which JSON.parse rejected): JSON.parse names a
 * position only in some messages and some Node versions, so the place is found here.
 */
function jsonErrorOffset(text: string): number {
  let at = 0
  const space = () => {
    while (at < text.length && ' \t\r\n'.includes(text[at])) at++
  }
  const fail = (): never => {
    throw at
  }
  const expect = (c: string) => (text[at] === c ? at++ : fail())
  const string = () => {
    expect('"')
    while (at < text.length && text[at] !== '"') {
      if (text[at] < ' ') fail()
      at += text[at] === '\\' ? 2 : 1
    }
    expect('"')
  }
  const value = (): void => {
    space()
    const c = text[at]
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']'
      at++
      space()
      if (text[at] === close) return void at++
      for (;;) {
        if (close === '}') {
          space()
          string()
          space()
          expect(':')
        }
        value()
        space()
        if (text[at] === ',') at++
        else return void expect(close)
      }
    }
    if (c === '"') return string()
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(at, at + 400))
    if (!literal) fail()
    at += literal![0].length
  }
  try {
    value()
    space()
    return at
  } catch (offset) {
    return offset as number
  }
}

type JsonAttempt = {value: unknown; end: number} | {reason: string; at: number}

/** One JSON object at `start`: its value and end, or why and where it failed. */
function decodeJsonObject(text: string, start: number): JsonAttempt {
  if (text[start] !== '{') return {reason: `expected "{" but found ${JSON.stringify(text.slice(start, start + 12))}`, at: start}
  const end = jsonValueEnd(text, start)
  if (end < 0) return {reason: 'the object is not closed (truncated file?)', at: start}
  const source = text.slice(start, end)
  try {
    return {value: JSON.parse(source) as unknown, end}
  } catch {
    const offset = Math.min(jsonErrorOffset(source), source.length - 1)
    return {reason: `unexpected ${JSON.stringify(source[offset])} at column ${offset - source.lastIndexOf('\n', offset - 1)}`, at: start + offset}
  }
}

/** Duplicated keys of every mapping of a YAML document (`<<` merges excepted), with their lines. */
function duplicateKeyWarnings(doc: ReturnType<typeof parseAllDocuments>[number], lines: LineCounter, lineOffset: number, origin: string): string[] {
  const warnings: string[] = []
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>()
      for (const pair of map.items) {
        if (!isScalar(pair.key) || pair.key.value === '<<') continue
        const key = String(pair.key.value)
        if (seen.has(key)) {
          const line = lines.linePos(pair.key.range?.[0] ?? 0).line + lineOffset
          warnings.push(`${origin}:${line}: duplicate key "${key}": its last value is used, as kubectl does`)
        }
        seen.add(key)
      }
    },
  })
  return warnings
}

function decodeYaml(text: string, from: number, origin: string, out: DecodedManifests, lineAt: (offset: number) => number, jsonFailure?: {reason: string; at: number}): void {
  const lineOffset = lineAt(from) - 1
  const lines = new LineCounter()
  const docs = parseAllDocuments(text.slice(from), {uniqueKeys: false, merge: true, lineCounter: lines})
  for (const [index, doc] of (Array.isArray(docs) ? docs : [docs]).entries()) {
    if (doc.errors.length > 0) {
      // The stream looked like JSON and its first document is neither JSON nor YAML: the JSON error is the useful one.
      if (jsonFailure && index === 0) throw unreadable(origin, lineAt(jsonFailure.at), 'JSON', jsonFailure.reason)
      const error = doc.errors[0]
      const line = (error.linePos?.[0]?.line ?? lines.linePos(doc.range[0]).line) + lineOffset
      throw unreadable(origin, line, 'YAML', error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, ''))
    }
    out.warnings.push(...duplicateKeyWarnings(doc, lines, lineOffset, origin))
    out.documents.push({value: doc.toJS(), line: lines.linePos(doc.contents?.range?.[0] ?? doc.range[0]).line + lineOffset})
  }
}

/** Every document of a manifest file's text, as kubectl would decode it. */
export function decodeManifestStream(text: string, origin: string): DecodedManifests {
  const body = text.replace(/^\uFEFF/, '')
  const out: DecodedManifests = {documents: [], warnings: []}
  const lineAt = lineFinder(body)
  let at = skipSpace(body, 0)
  if (body[at] !== '{') {
    decodeYaml(body, 0, origin, out, lineAt)
    return out
  }
  for (let count = 0; ; count++) {
    at = skipSpace(body, at)
    if (at >= body.length) return out
    const attempt = decodeJsonObject(body, at)
    if ('reason' in attempt) {
      if (count > 1) throw unreadable(origin, lineAt(attempt.at), 'JSON', attempt.reason)
      decodeYaml(body, at, origin, out, lineAt, body[at] === '{' ? attempt : undefined)
      return out
    }
    out.documents.push({value: attempt.value, line: lineAt(at)})
    at = attempt.end
  }
}
