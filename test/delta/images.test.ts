/**
 * The v1.31.0 test images (test/images/catalog.ts) against the v1.31.6 set, as real patch releases relate: the
 * same base layer per platform, pause:3.10 and etcd:3.5.15-0 the very same images, the other images each with its
 * own (binary) layer changed, and the same media type per role.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {buildImageSet} from '../images/builder.js'
import {defaultImageSpecs, KUBEADM_V1_31_0, KUBEADM_V1_31_6, kubeadmV1310Specs} from '../images/catalog.js'

test('the v1.31.0 set shares the base layers with v1.31.6; unchanged images are identical, changed ones differ in their own layer', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kf-delta-images-'))
  try {
    const old = await buildImageSet({dir: join(dir, 'old'), images: kubeadmV1310Specs()})
    const now = await buildImageSet({dir: join(dir, 'new'), images: defaultImageSpecs().filter((s) => KUBEADM_V1_31_6.includes(s.name))})
    t.deepEqual(old.images.map((i) => i.name), KUBEADM_V1_31_0)
    for (const [i, a] of old.images.entries()) {
      const b = now.images[i]
      t.is(a.mediaType, b.mediaType, `${a.name} and ${b.name}: same media type`)
      for (const [k, p] of a.platforms.entries()) t.is(p.layers[0].digest, b.platforms[k].layers[0].digest, `${a.name} ${p.platform}: same base layer`)
      if (a.name === b.name) t.is(a.digest, b.digest, `${a.name}: the very same image in both releases`)
      else for (const [k, p] of a.platforms.entries()) t.not(p.layers.at(-1)!.digest, b.platforms[k].layers.at(-1)!.digest, `${a.name}: its own layer changed`)
    }
    t.deepEqual(old.images.filter((a, i) => a.name === now.images[i].name).map((a) => a.name), ['registry.k8s.io/pause:3.10', 'registry.k8s.io/etcd:3.5.15-0'])
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})
