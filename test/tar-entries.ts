/**
 * Whole tars in memory as entry lists, through tar-stream: the fixture generators take a bundle apart and put altered
 * copies back together with these. Test tooling only (small fixtures); the product streams its tars.
 */
import tar from 'tar-stream'

export interface TarEntry {
  header: Partial<tar.Header>
  data: Buffer
}

export async function readTarEntries(bytes: Buffer): Promise<Array<TarEntry & {header: tar.Header}>> {
  const extract = tar.extract()
  const out: Array<TarEntry & {header: tar.Header}> = []
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = []
      stream.on('data', (c: unknown) => {
        chunks.push(c as Buffer)
      })
      stream.on('end', () => {
        out.push({header, data: Buffer.concat(chunks)})
        next()
      })
    })
    extract.on('finish', () => resolve())
    extract.on('error', reject)
  })
  extract.end(bytes)
  await done
  return out
}

/** A tar of `entries` in order, each header over `defaults`; links carry no data. */
export async function packTarEntries(entries: TarEntry[], defaults: Partial<tar.Header> = {}): Promise<Buffer> {
  const p = tar.pack()
  const chunks: Buffer[] = []
  const collected = (async () => {
    for await (const c of p as AsyncIterable<Buffer>) chunks.push(c)
  })()
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const link = e.header.type === 'symlink' || e.header.type === 'link'
      const header = {...defaults, ...e.header, name: e.header.name!, size: link ? 0 : e.data.length}
      if (header.size) p.entry(header, e.data, (err) => (err ? reject(err) : resolve()))
      else p.entry(header, (err) => (err ? reject(err) : resolve()))
    })
  }
  p.finalize()
  await collected
  return Buffer.concat(chunks)
}
