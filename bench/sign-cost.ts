/**
 * What `create --sign-key` adds to create, in-process and with nothing else running: reading the key (before the
 * build) and signing with the sha256 and size the writer just computed (after it: bundle.json's digest from the tar
 * index, one signature, the .sig.json written). Prints the median and the spread of RUNS runs in milliseconds.
 *   node dist/bench/sign-cost.js BUNDLE KEY [RUNS]
 */
import {readFile, rm} from 'node:fs/promises'
import {performance} from 'node:perf_hooks'
import {readPrivateKey} from '../src/trust/keys.js'
import {signBundle} from '../src/trust/sign.js'
import {signatureFileFor} from '../src/trust/envelope.js'

const [bundle, keyFile, runsText] = process.argv.slice(2)
if (!bundle || !keyFile) throw new Error('usage: node dist/bench/sign-cost.js BUNDLE KEY [RUNS]')
const runs = Number(runsText ?? 20)
const {createHash} = await import('node:crypto')
// What the writer hands over: computed while it wrote, so not timed here.
const known = {sha256: createHash('sha256').update(await readFile(bundle)).digest('hex'), size: (await readFile(bundle)).length}
const times: number[] = []
for (let i = 0; i <= runs; i++) {
  await rm(signatureFileFor(bundle), {force: true})
  const start = performance.now()
  const key = await readPrivateKey(keyFile)
  await signBundle(bundle, key, known)
  if (i > 0) times.push(performance.now() - start) // the first run warms the module and file caches
}
times.sort((a, b) => a - b)
const at = (q: number): string => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(1)
process.stdout.write(`create --sign-key adds: median ${at(0.5)} ms (min ${at(0)}, max ${at(1)}) over ${runs} runs\n`)
