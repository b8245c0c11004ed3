/**
 * kill -9 during the download, then rerun: the rerun fetches only blobs that were not yet verified in the cache,
 * and the bundle is byte-identical to one built in a single go. A small in-process proxy in front of the real
 * open registry slows blob answers (so the kill lands mid-download) and records which blobs each run fetched.
 */
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises'
import {createServer, request as httpRequest, type Server} from 'node:http'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {AddressInfo} from 'node:net'
import {peerTest, type Peers} from '../harness/peers.js'
import {runCli, spawnCli} from '../helpers/cli.js'

interface Proxy {
  url: string
  blobGets: string[]
  delayMs: number
  close: () => Promise<void>
}

async function startProxy(upstream: string): Promise<Proxy> {
  const target = new URL(upstream)
  const state = {blobGets: [] as string[], delayMs: 0}
  const server: Server = createServer((req, res) => {
    const match = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '')
    const forward = (): void => {
      const up = httpRequest({agent: false, host: target.hostname, port: target.port, method: req.method, path: req.url, headers: {...req.headers, host: target.host}}, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      })
      up.on('error', () => res.destroy())
      res.on('close', () => up.destroy()) // client gone (killed): drop the upstream exchange too
      req.pipe(up)
    }
    if (match && req.method === 'GET') {
      state.blobGets.push(match[1])
      const timer = setTimeout(forward, state.delayMs)
      res.on('close', () => clearTimeout(timer))
    } else {
      forward()
    }
  })
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res))
  const {port} = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    get blobGets() {
      return state.blobGets
    },
    set blobGets(v) {
      state.blobGets = v
    },
    get delayMs() {
      return state.delayMs
    },
    set delayMs(v) {
      state.delayMs = v
    },
    close: () => new Promise<void>((res) => {
      server.closeAllConnections()
      server.close(() => res())
    }),
  }
}

function args(peers: Peers, mirror: string, output: string, cache: string): string[] {
  return [
    'create', '-o', output, '--cache-dir', cache, '--json', '--no-progress', '--concurrency', '2',
    ...peers.images.flatMap((i) => ['--image', i.name]), '--platform', 'linux/amd64', '--platform', 'linux/arm64',
    '--mirror', `registry.k8s.io=${mirror}`, '--mirror', `docker.io=${mirror}`,
  ]
}

peerTest('kill -9 mid-download, rerun: no verified blob is fetched again and the bundle is identical', ['registries'], async (t, peers) => {
  const work = await mkdtemp(join(tmpdir(), 'kubeferry-resume-test-'))
  const proxy = await startProxy(peers.registries.open.url)
  try {
    // Reference: one uninterrupted build straight from the registry.
    const reference = await runCli(args(peers, peers.registries.open.url, join(work, 'reference.tar'), join(work, 'cache-ref')))
    t.is(reference.code, 0, reference.stderr)
    const total = (JSON.parse(reference.stdout) as {downloadedBlobs: number}).downloadedBlobs
    t.true(total > 20)

    const output = join(work, 'k8s.tar')
    const cache = join(work, 'cache')
    proxy.delayMs = 400
    const child = spawnCli(args(peers, proxy.url, output, cache), {stdio: 'ignore'})
    const blobsDir = join(cache, 'blobs', 'sha256')
    // Wait until some (not all) layer blobs are verified in the cache, then kill -9.
    const deadline = Date.now() + 90_000
    let cachedAtKill: string[] = []
    for (;;) {
      await new Promise((r) => setTimeout(r, 100))
      const names = existsSync(blobsDir) ? await readdir(blobsDir) : []
      if (proxy.blobGets.length >= 8 || Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL')
        await new Promise((r) => child.once('exit', r))
        cachedAtKill = existsSync(blobsDir) ? await readdir(blobsDir) : names
        break
      }
    }
    t.false(existsSync(output), 'nothing under the final name after the kill')
    const firstRunGets = new Set(proxy.blobGets)
    const downloadedBeforeKill = cachedAtKill.filter((hex) => firstRunGets.has(`sha256:${hex}`))
    t.true(downloadedBeforeKill.length > 0, 'some blobs were verified before the kill')
    t.true(firstRunGets.size < total, 'the kill landed before every blob was fetched')

    proxy.delayMs = 0
    proxy.blobGets = []
    // async: the proxy runs in this process
    const rerun = await runCli(args(peers, proxy.url, output, cache))
    t.is(rerun.code, 0, rerun.stderr)
    const again = new Set(proxy.blobGets)
    for (const hex of downloadedBeforeKill) t.false(again.has(`sha256:${hex}`), `verified blob ${hex.slice(0, 12)} not fetched again`)
    t.is(again.size + downloadedBeforeKill.length, total, 'the rerun fetched exactly what was missing')
    t.true((await readFile(output)).equals(await readFile(join(work, 'reference.tar'))), 'byte-identical to the uninterrupted build')
    t.deepEqual(await readdir(join(cache, 'tmp')), [], 'the killed run\'s temp files were cleaned up')
  } finally {
    await proxy.close()
    await rm(work, {recursive: true, force: true})
  }
})
