/**
 * The floor for a Node.js client: fetch a list of URLs with undici (the HTTP client kubeferry uses), `--parallel`
 * at once over one keep-alive pool, each body streamed to its own file (what `curl --parallel -o` does), nothing else:
 * no hashing, no tar. bench/create.ts runs it beside kubeferry and curl, so the report can tell how much of the gap
 * to curl is Node.js + undici and how much is kubeferry's own work (verification, cache, tar, checksums).
 *
 *   node dist/bench/undici-fetch.js LIST.json   (LIST: [{"url": …, "output": …, "accept"?: …}], parallel 8)
 */
import {createWriteStream} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {pipeline} from 'node:stream/promises'
import {Agent, request} from 'undici'

const list = JSON.parse(await readFile(process.argv[2]!, 'utf8')) as {url: string; output: string; accept?: string}[]
const agent = new Agent({connections: 8})
let next = 0
await Promise.all(
  Array.from({length: 8}, async () => {
    while (next < list.length) {
      const item = list[next++]!
      const res = await request(item.url, {dispatcher: agent, headers: item.accept ? {accept: item.accept} : {}})
      if (res.statusCode !== 200) throw new Error(`${item.url}: HTTP ${res.statusCode}`)
      await pipeline(res.body, createWriteStream(item.output, {highWaterMark: 1024 * 1024}))
    }
  }),
)
await agent.close()
