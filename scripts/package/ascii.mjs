/**
 * The bundled script as ASCII only. esbuild escapes non-ASCII characters in strings and identifiers but leaves them
 * raw in regular expression literals (ansi-regex's U+009B, say). One such character makes V8 hold the whole 1.9 MB
 * source as a two-byte string (twice the memory, slower to decode and scan at every start); an ASCII source is read
 * as Latin-1 (boot.cjs) straight into a one-byte string. Each non-ASCII character inside a regular expression
 * literal becomes its \uXXXX escape, which means the same there; one anywhere else fails the build, for a person to
 * look at (a raw template literal would change meaning).
 */
import ts from 'typescript'

/** The [start, end) offsets of every regular expression literal in `text` (JavaScript). */
function regexRanges(text) {
  const ranges = []
  const source = ts.createSourceFile('bundle.js', text, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS)
  const visit = (node) => {
    if (node.kind === ts.SyntaxKind.RegularExpressionLiteral) ranges.push([node.getStart(source), node.end])
    else ts.forEachChild(node, visit)
  }
  visit(source)
  return ranges
}

/** `text` with every non-ASCII character escaped, or an Error saying where one cannot be. */
export function asciiOnly(text) {
  if (!/[^\x00-\x7f]/.test(text)) return text
  const ranges = regexRanges(text)
  const inRegex = (at) => ranges.some(([start, end]) => start <= at && at < end)
  let out = ''
  let from = 0
  for (const match of text.matchAll(/(\\*)([^\x00-\x7f])/g)) {
    const [whole, slashes, char] = match
    const at = match.index + slashes.length
    const code = char.charCodeAt(0)
    if (!inRegex(at) || code >= 0xd800) {
      return new Error(`a non-ASCII character (U+${code.toString(16).toUpperCase().padStart(4, '0')}) outside a regular expression literal at offset ${at}: ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 40))}`)
    }
    // \› (an identity escape) is › too: the escape replaces both.
    const kept = slashes.length % 2 ? slashes.slice(1) : slashes
    out += text.slice(from, match.index) + kept + `\\u${code.toString(16).padStart(4, '0')}`
    from = match.index + whole.length
  }
  return out + text.slice(from)
}
