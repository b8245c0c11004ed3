/** `--help` of images, create and config lists every runtime series the tables know (generated, not hand-written). */
import {execFile} from 'node:child_process'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import test from 'ava'
import runtimeData from '../../src/kube/data/runtime-pause.json' with {type: 'json'}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const bin = join(root, 'bin/run.js')
const tables = (runtimeData as unknown as {runtimes: Record<string, {series: Array<{series: string}>}>}).runtimes
const series = (runtime: string) => tables[runtime].series.map((s) => s.series)

/** The help text with all white space removed (oclif wraps long descriptions at any column). */
function help(command: string): Promise<string> {
  return new Promise((done, fail) => {
    execFile(process.execPath, [bin, command, '--help'], {cwd: root, env: {...process.env, NO_COLOR: '1', COLUMNS: '80'}}, (error, stdout) => {
      if (error) fail(error)
      else done(stdout.replace(/\s+/g, ''))
    })
  })
}

for (const command of ['images', 'create']) {
  test(`${command} --help lists every containerd, CRI-O and cri-dockerd series of the tables`, async (t) => {
    const text = await help(command)
    t.true(text.includes(`containerd@${series('containerd').join('|')},`))
    t.true(text.includes(`cri-o@${series('cri-o').join('|')},`))
    t.true(text.includes(`docker@cri-dockerd[@${series('cri-dockerd').join('|')}]`))
    t.true(series('containerd').includes('1.4') && series('cri-o').includes('1.11'))
  })
}

test('config --help lists every containerd series of the table for --containerd-version', async (t) => {
  const text = await help('config')
  t.true(text.includes(`(knownseries:${series('containerd').join(',')})`), text)
})
