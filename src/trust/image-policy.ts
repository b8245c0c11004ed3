/**
 * Which publishers' signatures an image must carry (issue 19 d4): a JSON policy file (YAML would need a dependency)
 *
 *   {"images": [
 *     {"match": "registry.corp:5000/apps/**", "keys": ["apps-cosign.pub", "-----BEGIN PUBLIC KEY-----\n…"]},
 *     {"match": "registry.k8s.io/**", "keyless": [{"issuer": "https://accounts.google.com", "subject": "krel-trust@…"}]}
 *   ]}
 *
 * `match` is a glob over `registry/repository` (`*`: within one path segment, `**`: across segments); the first
 * matching entry wins, the policy file's entries before the built-in one (registry.k8s.io's release signer, keyless).
 * `keys` are file paths (relative to the policy file) or inline PEM; `keyless` identities are matched exactly against
 * the verified certificate's issuer (Fulcio's OIDC issuer extension) and subject (its SubjectAltName), or the subject
 * against `subjectRegExp` (anchored at both ends) instead. Keyless signatures are checked against a Sigstore trusted
 * root (trusted-root.ts); without one they are "not checked". `--cosign-key FILE` applies to every image no entry
 * matches; an image with neither is "not checked".
 */
import {readFile, stat} from 'node:fs/promises'
import {dirname, isAbsolute, join} from 'node:path'
import {KubeferryError} from '../oci/errors.js'
import {cosignKeyFromPem, readCosignKey, type CosignKey} from './cosign-keys.js'
import {readTrustedRootFile, type TrustedRootFile} from './trusted-root.js'

export interface KeylessIdentity {
  issuer: string
  /** The SubjectAltName exactly (an e-mail or URI), or, instead, `subjectRegExp` (whole-string match). */
  subject?: string
  subjectRegExp?: string
}

export interface ImagePolicyEntry {
  match: string
  keys: CosignKey[]
  keyless: KeylessIdentity[]
  /** `--image-policy FILE entry N`, `built-in`, or `--cosign-key`: for messages and --json. */
  origin: string
}

export interface ImagePolicy {
  entries: ImagePolicyEntry[]
  /** --trusted-root: checks keyless signatures, in place of the one a bundle carries. */
  trustedRoot?: TrustedRootFile
  /** --cosign-key: for images no entry matches (undefined: such images are not checked). */
  fallback?: ImagePolicyEntry
}

/** registry.k8s.io signs every release image keylessly with this identity (Kubernetes SIG Release). */
export const BUILT_IN_ENTRIES: ReadonlyArray<Omit<ImagePolicyEntry, 'keys'>> = [
  {match: 'registry.k8s.io/**', keyless: [{issuer: 'https://accounts.google.com', subject: 'krel-trust@k8s-releng-prod.iam.gserviceaccount.com'}], origin: 'built-in (registry.k8s.io release signatures)'},
]

const MAX_POLICY_BYTES = 1024 * 1024

/** `*` within a segment, `**` across segments, everything else literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split(/(\*\*|\*)/)
    .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('')
  return new RegExp(`^${body}$`)
}

/** The entry for `registry/repository`: the first matching one, else the --cosign-key fallback, else none. */
export function entryFor(policy: ImagePolicy, registry: string, repository: string): ImagePolicyEntry | undefined {
  const name = `${registry}/${repository}`
  return policy.entries.find((e) => globToRegExp(e.match).test(name)) ?? policy.fallback
}

interface RawEntry {
  match?: unknown
  keys?: unknown
  keyless?: unknown
}

async function readEntry(raw: RawEntry, n: number, file: string): Promise<ImagePolicyEntry> {
  const origin = `--image-policy ${file} entry ${n}`
  const bad = (why: string): KubeferryError =>
    new KubeferryError('INVALID_ARGUMENT', `image policy ${file}: entry ${n} ${why}`, {hint: 'each entry is {"match": "REGISTRY/REPOSITORY-GLOB", "keys": ["FILE or PEM", …], "keyless": [{"issuer": "…", "subject": "…"}]}; nothing was checked'})
  if (typeof raw !== 'object' || raw === null) throw bad('is not an object')
  if (typeof raw.match !== 'string' || raw.match === '') throw bad('has no "match" pattern')
  const keyTexts = raw.keys ?? []
  const identities = raw.keyless ?? []
  if (!Array.isArray(keyTexts) || keyTexts.some((k) => typeof k !== 'string')) throw bad('has "keys" that are not a list of strings')
  if (!Array.isArray(identities) || identities.some((i) => typeof i?.issuer !== 'string' || (typeof i?.subject !== 'string') === (typeof i?.subjectRegExp !== 'string'))) throw bad('has "keyless" that is not a list of {"issuer", "subject"} (or {"issuer", "subjectRegExp"})')
  for (const i of identities as KeylessIdentity[]) {
    if (i.subjectRegExp === undefined) continue
    try {
      new RegExp(i.subjectRegExp)
    } catch {
      throw bad(`has a "subjectRegExp" that is not a regular expression: ${JSON.stringify(i.subjectRegExp)}`)
    }
  }
  if (keyTexts.length + identities.length === 0) throw bad(`(${raw.match}) names neither keys nor keyless identities`)
  const keys = await Promise.all(
    (keyTexts as string[]).map(async (k, m) =>
      k.includes('-----BEGIN')
        ? cosignKeyFromPem(k, `${origin}, key ${m + 1}`)
        : readCosignKey(isAbsolute(k) ? k : join(dirname(file), k)).catch((error: unknown) => {
            // Which policy entry named the key (a relative path is the policy file's directory's, not the shell's).
            throw error instanceof KubeferryError ? new KubeferryError(error.code, `image policy ${file}: entry ${n} (${raw.match as string}): ${error.message}`, {hint: error.hint, cause: error.cause, exitCode: error.exitCode}) : error
          }),
    ),
  )
  return {match: raw.match, keys, keyless: (identities as KeylessIdentity[]).map((i) => ({issuer: i.issuer, ...(i.subject !== undefined ? {subject: i.subject} : {subjectRegExp: i.subjectRegExp})})), origin}
}

/** The policy file's entries (in order). */
export async function readImagePolicyFile(file: string): Promise<ImagePolicyEntry[]> {
  let text: string
  try {
    const info = await stat(file)
    if (!info.isFile()) throw Object.assign(new Error(), {code: info.isDirectory() ? 'EISDIR' : 'ENOTREG'})
    if (info.size > MAX_POLICY_BYTES) throw new KubeferryError('INVALID_ARGUMENT', `image policy ${file} is ${info.size} bytes, more than the ${MAX_POLICY_BYTES} an image policy may be`, {hint: 'give the JSON policy file itself: {"images": [{"match": "registry.corp/apps/**", "keys": ["cosign.pub"]}]}'})
    text = await readFile(file, 'utf8')
  } catch (error) {
    if (error instanceof KubeferryError) throw error
    throw new KubeferryError('IO', `cannot read image policy ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`, {hint: 'check the path and permissions'})
  }
  let value: {images?: unknown}
  try {
    value = JSON.parse(text) as {images?: unknown}
  } catch {
    throw new KubeferryError('INVALID_ARGUMENT', `image policy ${file} is not JSON`, {hint: 'write it as JSON: {"images": [{"match": "registry.corp/apps/**", "keys": ["cosign.pub"]}]}'})
  }
  if (!Array.isArray(value?.images)) throw new KubeferryError('INVALID_ARGUMENT', `image policy ${file} has no "images" list`, {hint: 'write it as {"images": [{"match": "registry.corp/apps/**", "keys": ["cosign.pub"]}]}'})
  return Promise.all(value.images.map((raw: RawEntry, i) => readEntry(raw, i + 1, file)))
}

/** Whether a verified certificate's identity is one `allowed` names (issuer exactly; subject exactly or by pattern). */
export function identityAllowed(allowed: KeylessIdentity[], found: {subject: string; issuer: string}): boolean {
  return allowed.some((i) => i.issuer === found.issuer && (i.subject !== undefined ? i.subject === found.subject : new RegExp(`^(?:${i.subjectRegExp})$`).test(found.subject)))
}

/** `subject (issuer …)` for messages. */
export function describeIdentity(i: {subject?: string; subjectRegExp?: string; issuer: string}): string {
  return `${i.subject ?? `/${i.subjectRegExp}/`} (issuer ${i.issuer})`
}

/** The policy from --image-policy, --cosign-key and --trusted-root, with the built-in entries after the file's. */
export async function resolveImagePolicy(options: {policyFile?: string; cosignKeys?: string[]; trustedRoot?: string}): Promise<ImagePolicy> {
  const fromFile = options.policyFile ? await readImagePolicyFile(options.policyFile) : []
  const keys = await Promise.all((options.cosignKeys ?? []).map(readCosignKey))
  const unique = [...new Map(keys.map((k) => [k.keyid, k])).values()]
  const trustedRoot = options.trustedRoot ? await readTrustedRootFile(options.trustedRoot) : undefined
  return {
    entries: [...fromFile, ...BUILT_IN_ENTRIES.map((e) => ({...e, keys: []}))],
    ...(trustedRoot ? {trustedRoot} : {}),
    ...(unique.length > 0 ? {fallback: {match: '**', keys: unique, keyless: [], origin: '--cosign-key'}} : {}),
  }
}
