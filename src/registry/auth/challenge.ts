/** One `WWW-Authenticate` challenge, e.g. `Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"`. */
export interface Challenge {
  scheme: string
  params: Record<string, string>
}

/**
 * Parse a WWW-Authenticate header value (or several) into challenges. Handles quoted strings with
 * escapes and several challenges in one header (`Basic realm="x", Bearer realm="y"`).
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return []
  const values = Array.isArray(header) ? header : [header]
  const out: Challenge[] = []
  for (const value of values) out.push(...parseOne(value))
  return out
}

function parseOne(text: string): Challenge[] {
  const challenges: Challenge[] = []
  let i = 0
  let current: Challenge | undefined
  const skipSpace = () => {
    while (i < text.length && /[\s,]/.test(text[i])) i++
  }
  while (i < text.length) {
    skipSpace()
    const tokenMatch = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(text.slice(i))
    if (!tokenMatch) break
    const token = tokenMatch[0]
    i += token.length
    while (i < text.length && text[i] === ' ') i++
    if (text[i] === '=') {
      // auth-param of the current challenge
      i++
      while (i < text.length && text[i] === ' ') i++
      let value = ''
      if (text[i] === '"') {
        i++
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length) i++
          value += text[i++]
        }
        i++
      } else {
        const m = /^[^,\s]*/.exec(text.slice(i))
        value = m ? m[0] : ''
        i += value.length
      }
      if (current) current.params[token.toLowerCase()] = value
    } else {
      current = {scheme: token.toLowerCase(), params: {}}
      challenges.push(current)
    }
  }
  return challenges
}

/** The scheme kubeferry will answer: Bearer beats Basic when both are offered. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic')
}
