import test from 'ava'
import {MAX_PARTS, NAMED_SPLIT_SIZES, parsePartPath, parseSplitSize, partCount, partPath, partsChecksumPath} from '../../src/bundle/parts-naming.js'

test('part names: NAME.tar.001 …, parsed back; the parts checksum file sits beside them', (t) => {
  t.is(partPath('/m/k8s.tar', 1), '/m/k8s.tar.001')
  t.is(partPath('/m/k8s.tar', 42), '/m/k8s.tar.042')
  t.deepEqual(parsePartPath('/m/k8s.tar.007'), {bundlePath: '/m/k8s.tar', index: 7})
  t.is(parsePartPath('/m/k8s.tar'), undefined)
  t.is(parsePartPath('/m/k8s.tar.000'), undefined)
  t.is(parsePartPath('/m/k8s.tar.1'), undefined)
  t.is(partsChecksumPath('/m/k8s.tar'), '/m/k8s.parts.sha256')
  t.throws(() => partPath('/m/k8s.tar', MAX_PARTS + 1))
  t.is(partCount(10, 4), 3)
  t.is(partCount(8, 4), 2)
  t.is(partCount(0, 4), 1)
})

test('split sizes: units (decimal and binary), named media, and clear refusals', (t) => {
  t.is(parseSplitSize('4GiB'), 4 * 1024 ** 3)
  t.is(parseSplitSize('700MB'), 700_000_000)
  t.is(parseSplitSize('1.5 GB'), 1_500_000_000)
  t.is(parseSplitSize('1500000000'), 1_500_000_000)
  t.is(parseSplitSize('FAT32'), 4 * 1024 ** 3 - 1)
  t.true(parseSplitSize('dvd') < 4_700_372_992)
  t.true(NAMED_SPLIT_SIZES['bd-25'] < 25_025_314_816)
  t.throws(() => parseSplitSize('4 furlongs'), {message: /invalid --split size "4 furlongs"/})
  t.throws(() => parseSplitSize('10kB'), {message: /less than the 1048576/})
})
