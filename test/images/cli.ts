/**
 * Command-line access to the test image builder and pusher (for bench scripts and by hand):
 *
 *   node dist/test/images/cli.js build --dir DIR [--layer-size BYTES] [--base-layer-size BYTES] [--many N]
 *        [--only NAME,…] [--platforms linux/amd64,linux/arm64/v8] [--gzip-level 1-9] [--no-default]
 *   node dist/test/images/cli.js push --dir DIR --registry http://127.0.0.1:5000 [--username U --password-stdin] [--prefix P]
 *
 * `build` prints the TestImage list as JSON; sizes accept K/M/G suffixes (binary).
 */
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import type {TestImage} from '../harness/peers.js'
import {buildImageSet} from './builder.js'
import {blobPath} from './layer.js'
import {pushImageSet} from './seed.js'

function size(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(text.trim())
  if (!m) throw new Error(`invalid size ${text}`)
  const unit = {'': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3}[m[2].toUpperCase() as '' | 'K' | 'M' | 'G']
  return Math.round(Number(m[1]) * unit)
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2)
  const {values} = parseArgs({
    args: rest,
    options: {
      dir: {type: 'string'},
      'layer-size': {type: 'string'},
      'base-layer-size': {type: 'string'},
      many: {type: 'string'},
      only: {type: 'string'},
      platforms: {type: 'string'},
      'gzip-level': {type: 'string'},
      'no-default': {type: 'boolean'},
      registry: {type: 'string'},
      username: {type: 'string'},
      'password-stdin': {type: 'boolean'},
      prefix: {type: 'string'},
      concurrency: {type: 'string'},
    },
  })
  if (!values.dir) throw new Error('--dir is required')
  if (command === 'build') {
    const set = await buildImageSet({
      dir: values.dir,
      ...(values['no-default'] ? {images: []} : {}),
      layerSize: size(values['layer-size']),
      baseLayerSize: size(values['base-layer-size']),
      many: values.many ? Number(values.many) : undefined,
      only: values.only?.split(','),
      platforms: values.platforms?.split(','),
      gzipLevel: values['gzip-level'] ? Number(values['gzip-level']) : undefined,
    })
    process.stdout.write(JSON.stringify(set.images, null, 2) + '\n')
  } else if (command === 'push') {
    if (!values.registry) throw new Error('--registry is required')
    let password: string | undefined
    if (values['password-stdin']) {
      const chunks: Buffer[] = []
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
      password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
    }
    const images = JSON.parse(await readFile(join(values.dir, 'images.json'), 'utf8')) as TestImage[]
    const dir = values.dir
    await pushImageSet({images, blobPath: (d) => blobPath(join(dir, 'blobs'), d)}, {url: values.registry, username: values.username, password}, {prefix: values.prefix, concurrency: values.concurrency ? Number(values.concurrency) : undefined})
    process.stderr.write(`pushed ${images.length} images to ${values.registry}\n`)
  } else {
    throw new Error('usage: cli.js build|push --dir DIR …')
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`test-images: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
