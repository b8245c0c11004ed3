/**
 * create checks the output before the work: a missing or read-only directory fails before the plan (no registry is
 * even asked), a bundle that does not fit (free space, FAT/exFAT's 4 GiB − 1 file size) fails once the plan is known,
 * before a byte of the bundle is written; the blobs fetched while planning stay in the cache for the next run. The free-space and read-only cases use real tmpfs mounts (root only); FAT cannot be mounted here (no vfat
 * in this kernel), so its limit is checked through the statfs probe.
 */
import test from 'ava'
import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {checkBundleFits, FAT_MAX_FILE_BYTES, fileSizeLimit} from '../../src/bundle/preflight.js'
import {KubeferryError} from '../../src/oci/errors.js'
import {needPeers} from '../harness/peers.js'
import {assertCleanError, runCli} from '../faults/helpers.js'
import {startFaultProxy} from '../faults/proxy.js'

let work: string
const mounts: string[] = []

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kf-preflight-'))
})

test.after.always(async () => {
  for (const m of mounts) {
    try {
      execFileSync('umount', [m])
    } catch {
      // already gone
    }
  }
  await rm(work, {recursive: true, force: true})
})

/** A tmpfs of `size` at a new directory, or undefined when this process may not mount. */
async function tmpfs(name: string, options: string): Promise<string | undefined> {
  const dir = join(work, name)
  await mkdir(dir)
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], {stdio: 'ignore'})
  } catch {
    return undefined
  }
  mounts.push(dir)
  return dir
}

const IMAGES = ['--image', 'registry.k8s.io/pause:3.10', '--image', 'registry.k8s.io/kube-proxy:v1.31.6', '--image', 'docker.io/library/busybox:1.36']

test.serial('a missing output directory fails at once, naming it, before any registry is asked', async (t) => {
  const output = join(work, 'no', 'such', 'dir', 'k8s.tar')
  // An unreachable mirror: were the registry asked first, the error would be about the network.
  const r = await runCli(['create', ...IMAGES, '--mirror', 'registry.k8s.io=http://127.0.0.1:9', '--mirror', 'docker.io=http://127.0.0.1:9', '--cache-dir', join(work, 'cache'), '--no-progress', '-o', output])
  assertCleanError(t, r, new RegExp(`output directory ${join(work, 'no', 'such', 'dir')} does not exist`), 'missing dir')
  t.regex(r.stderr, /mkdir -p/)
  t.true(r.ms < 15_000)
})

test.serial('a read-only output directory fails before the plan', async (t) => {
  const dir = await tmpfs('ro', 'ro,size=1m')
  if (!dir) return void t.log('SKIPPED: cannot mount tmpfs here')
  const r = await runCli(['create', ...IMAGES, '--mirror', 'registry.k8s.io=http://127.0.0.1:9', '--mirror', 'docker.io=http://127.0.0.1:9', '--cache-dir', join(work, 'cache'), '--no-progress', '-o', join(dir, 'k8s.tar')])
  assertCleanError(t, r, new RegExp(`cannot write the bundle into ${dir}: it is on a read-only filesystem`), 'read-only')
})

test.serial('an output filesystem too small for the bundle fails before the bundle is written; what was fetched meanwhile is not fetched again', async (t) => {
  const peers = needPeers(t, 'registries')
  if (!peers) return
  const dir = await tmpfs('small', 'size=64k')
  if (!dir) return void t.log('SKIPPED: cannot mount tmpfs here')
  const proxy = await startFaultProxy(peers.registries.open.url)
  t.teardown(() => proxy.close())
  const cache = join(work, 'cache-small')
  const mirrors = ['--mirror', `registry.k8s.io=${proxy.url}`, '--mirror', `docker.io=${proxy.url}`]
  const r = await runCli(['create', ...IMAGES, ...mirrors, '--cache-dir', cache, '--no-progress', '-o', join(dir, 'k8s.tar')])
  assertCleanError(t, r, new RegExp(`not enough space in ${dir} for the bundle: [\\d.]+ MB needed, [\\d.]+ MB free`), 'small fs')
  t.true(proxy.log.some((l) => l.path.includes('/manifests/')), 'the plan ran')
  t.false(existsSync(join(dir, 'k8s.tar.partial')))
  t.false(existsSync(join(dir, 'k8s.tar')))
  // Blobs start downloading as the plan finds them: those complete when the refusal came are in the cache, and the
  // next run (to a disk that fits) takes them from there.
  const kept = proxy.log.filter((l) => l.path.includes('/blobs/')).map((l) => l.path.split('/blobs/')[1]).filter((digest) => existsSync(join(cache, 'blobs', 'sha256', digest.slice(7))))
  const first = proxy.log.length
  const ok = await runCli(['create', ...IMAGES, ...mirrors, '--cache-dir', cache, '--no-progress', '-o', join(work, 'k8s.tar')])
  t.is(ok.code, 0, ok.stderr)
  const again = proxy.log.slice(first).filter((l) => l.path.includes('/blobs/') && kept.some((digest) => l.path.endsWith(digest)))
  t.deepEqual(again, [], 'a blob the refused run completed is fetched again')
  t.log(`${kept.length} blob(s) fetched by the refused run were reused`)
})

test('FAT and exFAT limit a file to 4 GiB - 1; other filesystems have no limit that matters', (t) => {
  t.deepEqual(fileSizeLimit(0x4d44), {bytes: 4 * 1024 ** 3 - 1, filesystem: 'FAT'})
  t.deepEqual(fileSizeLimit(0x2011bab0), {bytes: 4 * 1024 ** 3 - 1, filesystem: 'exFAT'})
  for (const type of [0xef53, 0x58465342, 0x01021994, 0x5346544e]) t.is(fileSizeLimit(type), undefined)
})

test('a bundle over 4 GiB - 1 on FAT fails with its size, the limit, and what to do; one byte less passes', async (t) => {
  const fat = async () => ({free: 64 * 1024 ** 3, type: 0x4d44})
  const output = '/media/usb/k8s.tar'
  const error = await t.throwsAsync(checkBundleFits(output, FAT_MAX_FILE_BYTES + 1, 0, '/var/cache/kubeferry', 12, fat))
  t.true(error instanceof KubeferryError)
  t.is(error!.message, `the bundle of 12 images is 4295.0 MB (4294967296 bytes), more than the 4294967295 bytes (4 GiB − 1) a file can hold on the FAT filesystem of /media/usb`)
  t.regex((error as KubeferryError).hint ?? '', /write to another filesystem/)
  await t.notThrowsAsync(checkBundleFits(output, FAT_MAX_FILE_BYTES, 0, '/var/cache/kubeferry', 12, fat))
})

test('--split on FAT: parts up to 4 GiB − 1 pass whatever the bundle size; a larger part size is refused before any download', async (t) => {
  const fat = async () => ({free: 64 * 1024 ** 3, type: 0x2011bab0})
  const output = '/media/usb/k8s.tar'
  const bundle = 20 * 1024 ** 3
  await t.notThrowsAsync(checkBundleFits(output, bundle, 0, '/var/cache/kubeferry', 40, fat, FAT_MAX_FILE_BYTES))
  const error = await t.throwsAsync(checkBundleFits(output, bundle, 0, '/var/cache/kubeferry', 40, fat, 4 * 1024 ** 3))
  t.true(error instanceof KubeferryError)
  t.is(error!.message, `--split 4294967296 bytes makes parts larger than the 4294967295 bytes (4 GiB − 1) a file can hold on the exFAT filesystem of /media/usb`)
  t.regex((error as KubeferryError).hint ?? '', /--split fat32/)
  // A part size over the limit is harmless when the bundle itself fits in a file: its one part is the bundle's size.
  await t.notThrowsAsync(checkBundleFits(output, 1024 ** 3, 0, '/var/cache/kubeferry', 4, fat, 8 * 1024 ** 3))
  // Free space is the bundle's either way.
  const small = async () => ({free: 10 * 1024 ** 3, type: 0x2011bab0})
  await t.throwsAsync(checkBundleFits(output, bundle, 0, '/var/cache/kubeferry', 40, small, FAT_MAX_FILE_BYTES), {message: /not enough space/})
})

test('without --split, the FAT refusal says to use --split fat32; more than 999 parts are refused', async (t) => {
  const fat = async () => ({free: 64 * 1024 ** 3, type: 0x4d44})
  const error = await t.throwsAsync(checkBundleFits('/media/usb/k8s.tar', 5 * 1024 ** 3, 0, '/var/cache/kubeferry', 12, fat))
  t.regex((error as KubeferryError).hint ?? '', /--split fat32/)
  const ext4 = async () => ({free: 64 * 1024 ** 3, type: 0xef53})
  const many = await t.throwsAsync(checkBundleFits('/data/k8s.tar', 1000 * 1024 ** 2 + 1, 0, '/var/cache/kubeferry', 12, ext4, 1024 ** 2))
  t.regex(many!.message, /1001 parts, more than the 999/)
  await t.notThrowsAsync(checkBundleFits('/data/k8s.tar', 999 * 1024 ** 2, 0, '/var/cache/kubeferry', 12, ext4, 1024 ** 2))
})
