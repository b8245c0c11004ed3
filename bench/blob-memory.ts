/**
 * Peak memory while downloading one big blob through RegistryClient.openBlob into /dev/null.
 * A child process serves deterministic bytes as a registry blob (so the server's memory is not
 * counted); the parent prints time, throughput and peak RSS (target < 150 MB for 1 GB).
 *   node dist/bench/blob-memory.js [sizeMiB=1024]
 */
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {pipeline} from 'node:stream/promises'
import {fileURLToPath} from 'node:url'
import {RegistryClient} from '../src/registry/client.js'
import {parseReference} from '../src/oci/reference.js'
import type {Digest} from '../src/oci/digest.js'

const CHUNK = 1024 * 1024

function chunkAt(base: Buffer, i: number): Buffer {
  const c = Buffer.from(base)
  c.writeUInt32BE(i, 0) // every MiB differs, so the digest covers position
  return c
}

async function serve(size: number): Promise<void> {
  const base = createHash('sha512').update('kubeferry-bench').digest()
  const unit = Buffer.alloc(CHUNK)
  for (let o = 0; o < CHUNK; o += base.length) base.copy(unit, o)
  const chunks = Math.ceil(size / CHUNK)
  const hash = createHash('sha256')
  for (let i = 0; i < chunks; i++) hash.update(chunkAt(unit, i).subarray(0, Math.min(CHUNK, size - i * CHUNK)))
  const digest = `sha256:${hash.digest('hex')}`
  const server = createServer((_req, res) => {
    res.writeHead(200, {'content-length': String(size), 'content-type': 'application/octet-stream'})
    let i = 0
    const pump = () => {
      while (i < chunks) {
        const c = chunkAt(unit, i).subarray(0, Math.min(CHUNK, size - i * CHUNK))
        i++
        if (!res.write(c)) return void res.once('drain', pump)
      }
      res.end()
    }
    pump()
  })
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`READY ${(server.address() as AddressInfo).port} ${digest}\n`)
  })
  process.stdin.on('end', () => process.exit(0)).resume()
}

async function main(): Promise<void> {
  if (process.argv[2] === '--serve') return serve(Number(process.argv[3]))
  const sizeMiB = Number(process.argv[2] ?? 1024)
  const size = sizeMiB * CHUNK
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', String(size)], {stdio: ['pipe', 'pipe', 'inherit']})
  const ready = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (c) => {
      out += c
      if (out.includes('\n')) resolve(out.trim())
    })
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)))
  })
  const [, port, digest] = ready.split(' ')
  const baseline = process.resourceUsage().maxRSS
  const client = new RegistryClient({credentials: {get: async () => undefined}})
  const started = process.hrtime.bigint()
  const stream = await client.openBlob(parseReference(`127.0.0.1:${port}/bench/blob`), {digest: digest as Digest, size})
  await pipeline(stream, createWriteStream('/dev/null'))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  await client.close()
  child.stdin.end()
  const peakMiB = process.resourceUsage().maxRSS / 1024
  const result = {blobMiB: sizeMiB, seconds: Number(seconds.toFixed(2)), MiBps: Math.round(sizeMiB / seconds), baselineRssMiB: Math.round(baseline / 1024), peakRssMiB: Math.round(peakMiB), targetMiB: 150, pass: peakMiB < 150}
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exitCode = result.pass ? 0 : 1
}

await main()
