/**
 * The read-only distribution API over a Catalog: `/v2/`, `_catalog`, `tags/list`, manifests and blobs (GET/HEAD,
 * Range). Each handler returns how many body bytes it sent, for the access log.
 */
import type {IncomingMessage, ServerResponse} from 'node:http'
import {createHash} from 'node:crypto'
import type {Catalog, ServedRepository, StoredContent} from './catalog.js'
import {RegistryHttpError} from './errors.js'
import {parseRange, type Route} from './routes.js'
import {ensureVerified, sendContent} from './blob-stream.js'
import {referrersAnswer} from './artifacts.js'

export interface HandlerResult {
  bytes: number
  /** Set when a body was cut short. */
  error?: string
}

function notFound(code: 'NAME_UNKNOWN' | 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN', message: string, detail?: unknown): RegistryHttpError {
  return new RegistryHttpError(404, code, message, detail)
}

function sendJson(req: IncomingMessage, res: ServerResponse, value: unknown, headers: Record<string, string> = {}): HandlerResult {
  const body = Buffer.from(JSON.stringify(value))
  res.statusCode = 200
  res.setHeader('Content-Type', 'application/json; charset=utf-8')
  res.setHeader('Content-Length', body.length)
  for (const [key, val] of Object.entries(headers)) res.setHeader(key, val) // a Content-Type given replaces JSON's
  if (req.method === 'HEAD') {
    res.end()
    return {bytes: 0}
  }
  res.end(body)
  return {bytes: body.length}
}

/** One page of a sorted list: entries after `last`, at most `n`, plus the Link header for the next page. */
function paginate(items: string[], page: {n?: number; last?: string}, basePath: string): {items: string[]; headers: Record<string, string>} {
  let start = 0
  if (page.last !== undefined) {
    start = items.findIndex((item) => item > page.last!)
    if (start === -1) start = items.length
  }
  if (page.n === undefined) return {items: items.slice(start), headers: {}}
  const slice = items.slice(start, start + page.n)
  const more = page.n > 0 && start + page.n < items.length
  const headers: Record<string, string> = {}
  if (more) headers.Link = `<${basePath}?n=${page.n}&last=${encodeURIComponent(slice[slice.length - 1])}>; rel="next"`
  return {items: slice, headers}
}

function repository(catalog: Catalog, name: string): ServedRepository {
  const repo = catalog.repositories.get(name)
  if (!repo) throw notFound('NAME_UNKNOWN', 'repository name not known to registry', {name})
  return repo
}

function etagMatches(req: IncomingMessage, etag: string): boolean {
  const header = req.headers['if-none-match']
  return typeof header === 'string' && header.split(',').some((value) => value.trim() === etag || value.trim() === '*')
}

function contentHeaders(res: ServerResponse, content: StoredContent, contentType: string): string {
  const etag = `"${content.digest}"`
  res.setHeader('Content-Type', contentType)
  res.setHeader('Docker-Content-Digest', content.digest)
  res.setHeader('ETag', etag)
  // Content-addressed: the bytes behind a digest never change.
  res.setHeader('Cache-Control', 'max-age=31536000')
  return etag
}

async function sendManifest(req: IncomingMessage, res: ServerResponse, catalog: Catalog, route: Extract<Route, {kind: 'manifest'}>): Promise<HandlerResult> {
  const repo = repository(catalog, route.name)
  let digest = route.digest
  if (route.tag !== undefined) {
    digest = catalog.resolveTag(repo, route.tag, route.ns)?.digest
    if (!digest) throw notFound('MANIFEST_UNKNOWN', 'manifest unknown', {name: route.name, tag: route.tag})
  }
  const content = digest && repo.manifests.has(digest) ? catalog.contents.get(digest) : undefined
  if (!content?.mediaType || content.state === 'bad') throw notFound('MANIFEST_UNKNOWN', 'manifest unknown', {name: route.name, ...(route.digest ? {digest: route.digest} : {tag: route.tag})})

  // Manifests are small: read whole and re-hashed on every answer, so only verified bytes ever leave.
  const bytes = await content.reader.readFile(content.entry.name)
  if (`sha256:${createHash('sha256').update(bytes).digest('hex')}` !== content.digest) {
    content.state = 'bad'
    throw notFound('MANIFEST_UNKNOWN', 'manifest failed verification in the bundle and is no longer served', {digest: content.digest})
  }
  const etag = contentHeaders(res, content, content.mediaType)
  if (etagMatches(req, etag)) {
    res.statusCode = 304
    res.end()
    return {bytes: 0}
  }
  res.statusCode = 200
  res.setHeader('Content-Length', bytes.length)
  if (req.method === 'HEAD') {
    res.end()
    return {bytes: 0}
  }
  res.end(bytes)
  return {bytes: bytes.length}
}

async function sendBlob(req: IncomingMessage, res: ServerResponse, catalog: Catalog, route: Extract<Route, {kind: 'blob'}>): Promise<HandlerResult> {
  const repo = repository(catalog, route.name)
  const content = repo.blobs.has(route.digest) || repo.manifests.has(route.digest) ? catalog.contents.get(route.digest) : undefined
  if (!content) throw notFound('BLOB_UNKNOWN', 'blob unknown to registry', {digest: route.digest})
  if (content.state === 'bad') throw notFound('BLOB_UNKNOWN', 'blob failed verification in the bundle and is no longer served', {digest: route.digest})

  const etag = contentHeaders(res, content, 'application/octet-stream')
  res.setHeader('Accept-Ranges', 'bytes')
  if (etagMatches(req, etag)) {
    res.statusCode = 304
    res.end()
    return {bytes: 0}
  }
  const range = req.method === 'GET' ? parseRange(req.headers.range, content.size) : undefined
  if (range === 'unsatisfiable') {
    throw new RegistryHttpError(416, 'RANGE_INVALID', 'requested range not satisfiable', {size: content.size}, {'Content-Range': `bytes */${content.size}`})
  }
  if (range && content.state === 'unverified') {
    // A part cannot be checked on its own: hash the whole blob once, then answer ranges from it.
    await ensureVerified(content)
    if ((content.state as string) !== 'verified') throw notFound('BLOB_UNKNOWN', 'blob failed verification in the bundle and is no longer served', {digest: route.digest})
  }
  if (range) {
    res.statusCode = 206
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${content.size}`)
    res.setHeader('Content-Length', range.end - range.start + 1)
  } else {
    res.statusCode = 200
    res.setHeader('Content-Length', content.size)
  }
  if (req.method === 'HEAD') {
    res.end()
    return {bytes: 0}
  }
  const {bytes, error} = await sendContent(content, res, range)
  if (error === undefined) return {bytes}
  // Headers are gone already; cutting the connection is the only way to tell the client the body is bad.
  res.destroy()
  return {bytes, error: error instanceof Error ? error.message : String(error)}
}

export async function handleRoute(req: IncomingMessage, res: ServerResponse, catalog: Catalog, route: Route): Promise<HandlerResult> {
  switch (route.kind) {
    case 'base':
      return sendJson(req, res, {})
    case 'catalog': {
      const page = paginate(catalog.repositoryNames(), route, '/v2/_catalog')
      return sendJson(req, res, {repositories: page.items}, page.headers)
    }
    case 'tags': {
      const repo = repository(catalog, route.name)
      const tags = [...repo.tags.keys()].sort()
      const page = paginate(tags, route, `/v2/${route.name}/tags/list`)
      return sendJson(req, res, {name: route.name, tags: page.items}, page.headers)
    }
    case 'manifest':
      return sendManifest(req, res, catalog, route)
    case 'blob':
      return sendBlob(req, res, catalog, route)
    case 'referrers': {
      const {body, headers} = referrersAnswer(repository(catalog, route.name), route.digest, route.artifactType)
      return sendJson(req, res, body, headers)
    }
  }
}
