/**
 * A small pusher for test images over undici: HEAD to skip present blobs, monolithic upload
 * (POST → PUT ?digest=), platform manifests by digest, then the index by tag. Handles anonymous,
 * Basic (htpasswd) and Bearer (token server) registries. Test code only; kubeferry's own push is elsewhere.
 */
import {createReadStream} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {request} from 'undici'
import type {TestImage} from '../harness/peers.js'

export interface PushTarget {
  /** http://127.0.0.1:PORT */
  url: string
  username?: string
  password?: string
}

export interface PushSource {
  images: TestImage[]
  blobPath(digest: string): string
}

type Headers = Record<string, string>

function parseChallenge(header: string): {scheme: string; params: Record<string, string>} {
  const space = header.indexOf(' ')
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase()
  const params: Record<string, string> = {}
  for (const m of header.slice(space + 1).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2]
  return {scheme, params}
}

/** Authorization headers per repository, obtained once from the registry's challenge. */
class RepoAuth {
  private readonly cache = new Map<string, Promise<Headers>>()
  constructor(private readonly target: PushTarget) {}

  headers(repository: string): Promise<Headers> {
    let entry = this.cache.get(repository)
    if (!entry) {
      entry = this.login(repository)
      this.cache.set(repository, entry)
    }
    return entry
  }

  private basic(): string {
    return 'Basic ' + Buffer.from(`${this.target.username ?? ''}:${this.target.password ?? ''}`).toString('base64')
  }

  private async login(repository: string): Promise<Headers> {
    const res = await request(`${this.target.url}/v2/`)
    await res.body.dump()
    if (res.statusCode === 200) return {}
    const header = res.headers['www-authenticate']
    if (res.statusCode !== 401 || typeof header !== 'string') throw new Error(`${this.target.url}/v2/: unexpected status ${res.statusCode}`)
    const challenge = parseChallenge(header)
    if (challenge.scheme === 'basic') return {authorization: this.basic()}
    const realm = new URL(challenge.params.realm)
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service)
    realm.searchParams.set('scope', `repository:${repository}:pull,push`)
    const tokenRes = await request(realm, {headers: this.target.username ? {authorization: this.basic()} : {}})
    const body = (await tokenRes.body.json()) as {token?: string; access_token?: string}
    if (tokenRes.statusCode !== 200) throw new Error(`token from ${realm.origin}: status ${tokenRes.statusCode}`)
    return {authorization: `Bearer ${body.token ?? body.access_token}`}
  }
}

async function expect(what: string, res: Awaited<ReturnType<typeof request>>, ok: number[]): Promise<void> {
  if (ok.includes(res.statusCode)) {
    await res.body.dump()
    return
  }
  const text = await res.body.text().catch(() => '')
  throw new Error(`${what}: HTTP ${res.statusCode} ${text.slice(0, 300)}`)
}

async function pushBlob(target: PushTarget, auth: Headers, repository: string, digest: string, size: number, path: string, check: boolean): Promise<void> {
  const base = `${target.url}/v2/${repository}`
  if (check) {
    const head = await request(`${base}/blobs/${digest}`, {method: 'HEAD', headers: auth})
    await head.body.dump()
    if (head.statusCode === 200) return
  }
  const start = await request(`${base}/blobs/uploads/`, {method: 'POST', headers: auth})
  await expect(`start upload of ${digest} to ${repository}`, start, [202])
  const location = new URL(String(start.headers.location), target.url)
  location.searchParams.set('digest', digest)
  const put = await request(location, {
    method: 'PUT',
    headers: {...auth, 'content-type': 'application/octet-stream', 'content-length': String(size)},
    body: createReadStream(path),
  })
  await expect(`upload ${digest} to ${repository}`, put, [201])
}

async function putManifest(target: PushTarget, auth: Headers, repository: string, reference: string, mediaType: string, bytes: Buffer): Promise<void> {
  const res = await request(`${target.url}/v2/${repository}/manifests/${reference}`, {
    method: 'PUT',
    headers: {...auth, 'content-type': mediaType},
    body: bytes,
  })
  await expect(`put manifest ${repository}:${reference}`, res, [201])
}

/** Push one image (all platforms) under `repository:tag` (default: the image's own). */
/**
 * Blob uploads in flight or done, by `repository@digest`. Images of one repository (pause:3.6, :3.8, …) share
 * blobs; distribution's filesystem driver races when the same blob is committed twice at once (seen as a later
 * manifest PUT failing with MANIFEST_BLOB_UNKNOWN), so each blob goes up once per repository.
 */
type Uploads = Map<string, Promise<void>>

export async function pushImage(source: PushSource, target: PushTarget, image: TestImage, auth: RepoAuth = new RepoAuth(target), as?: {repository?: string; tag?: string; fresh?: boolean; uploads?: Uploads}): Promise<void> {
  const repository = as?.repository ?? image.repository
  const tag = as?.tag ?? image.tag
  const headers = await auth.headers(repository)
  const blobs = new Map<string, number>()
  for (const p of image.platforms) {
    blobs.set(p.config, p.configSize)
    for (const l of p.layers) blobs.set(l.digest, l.size)
  }
  const uploads: Uploads = as?.uploads ?? new Map()
  await Promise.all(
    [...blobs].map(([digest, size]) => {
      const key = `${repository}@${digest}`
      let upload = uploads.get(key)
      if (!upload) {
        upload = pushBlob(target, headers, repository, digest, size, source.blobPath(digest), !as?.fresh)
        uploads.set(key, upload)
      }
      return upload
    }),
  )
  await Promise.all(image.platforms.map(async (p) => putManifest(target, headers, repository, p.digest, p.manifestMediaType, await readFile(source.blobPath(p.digest)))))
  await putManifest(target, headers, repository, tag, image.mediaType, await readFile(source.blobPath(image.digest)))
}

/**
 * Push every image of `source` into `target` under its canonical repository path (or `prefix/`+path),
 * `concurrency` images at once. `fresh`: the registry is known empty, skip the HEAD checks.
 */
export async function pushImageSet(source: PushSource, target: PushTarget, options: {concurrency?: number; prefix?: string; fresh?: boolean} = {}): Promise<void> {
  const auth = new RepoAuth(target)
  const uploads: Uploads = new Map()
  const queue = [...source.images]
  const worker = async (): Promise<void> => {
    for (let image = queue.shift(); image; image = queue.shift()) {
      await pushImage(source, target, image, auth, {fresh: options.fresh, uploads, ...(options.prefix ? {repository: `${options.prefix}/${image.repository}`} : {})})
    }
  }
  await Promise.all(Array.from({length: options.concurrency ?? 6}, worker))
}
