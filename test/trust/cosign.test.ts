/**
 * The cosign signature primitives without peers (the real-registry cases are in images.test.ts): every key type
 * cosign makes verifies its own signature over the raw payload and refuses a changed payload or another key; policy
 * globs; policy files refused with the entry named.
 */
import {generateKeyPairSync, sign} from 'node:crypto'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {cosignKeyFromPem} from '../../src/trust/cosign-keys.js'
import {verifyCosign} from '../../src/trust/cosign.js'
import {entryFor, globToRegExp, readImagePolicyFile, resolveImagePolicy} from '../../src/trust/image-policy.js'

const payload = Buffer.from('{"critical":{"identity":{"docker-reference":"registry.corp/app"},"image":{"docker-manifest-digest":"sha256:' + 'a'.repeat(64) + '"},"type":"cosign container image signature"},"optional":null}')

const pairs = {
  'ecdsa P-256': () => generateKeyPairSync('ec', {namedCurve: 'P-256'}),
  'rsa 2048': () => generateKeyPairSync('rsa', {modulusLength: 2048}),
  ed25519: () => generateKeyPairSync('ed25519'),
}

for (const [name, make] of Object.entries(pairs)) {
  test(`${name}: its cosign signature verifies; a changed payload or another key does not`, (t) => {
    const {privateKey, publicKey} = make()
    const key = cosignKeyFromPem(publicKey.export({type: 'spki', format: 'pem'}).toString(), `${name}.pub`)
    const sig = sign(key.kind === 'ed25519' ? null : 'sha256', payload, privateKey)
    t.true(verifyCosign(key, payload, sig))
    const changed = Buffer.from(payload.toString().replace('registry.corp/app', 'registry.corp/ap2'))
    t.false(verifyCosign(key, changed, sig))
    const other = cosignKeyFromPem(make().publicKey.export({type: 'spki', format: 'pem'}).toString(), 'other.pub')
    t.false(verifyCosign(other, payload, sig))
    t.false(verifyCosign(key, payload, Buffer.from('not a signature')))
  })
}

test('a private key is refused as a cosign key, without its bytes in the message', (t) => {
  const pem = generateKeyPairSync('ec', {namedCurve: 'P-256'}).privateKey.export({type: 'pkcs8', format: 'pem'}).toString()
  const error = t.throws(() => cosignKeyFromPem(pem, 'cosign.key'))
  t.regex(error!.message, /^cosign key cosign\.key is a private key/)
  t.false(error!.message.includes(pem.split('\n')[1]))
})

test('globs: * stays in a path segment, ** crosses them; the first entry wins, then --cosign-key', async (t) => {
  t.true(globToRegExp('registry.k8s.io/**').test('registry.k8s.io/coredns/coredns'))
  t.true(globToRegExp('docker.io/library/*').test('docker.io/library/busybox'))
  t.false(globToRegExp('docker.io/library/*').test('docker.io/library/a/b'))
  t.false(globToRegExp('registry.k8s.io/pause').test('registry.k8s.io/pause2'))
  t.false(globToRegExp('registry.k8s.io/**').test('registry.k8s.io.evil.com/pause'))
  const policy = await resolveImagePolicy({})
  t.is(entryFor(policy, 'registry.k8s.io', 'pause')?.keyless[0].subject, 'krel-trust@k8s-releng-prod.iam.gserviceaccount.com')
  t.is(entryFor(policy, 'docker.io', 'library/busybox'), undefined, 'no entry, no --cosign-key: not checked')
})

test('a policy file that is not one is refused, naming the file and the entry', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kf-cosign-policy-'))
  try {
    const cases: Array<[string, RegExp]> = [
      ['not json', /image policy .*p\.json is not JSON/],
      ['{"entries": []}', /has no "images" list/],
      ['{"images": [{"keys": ["a.pub"]}]}', /entry 1 has no "match" pattern/],
      ['{"images": [{"match": "x/*", "keyless": [{"issuer": "i"}]}]}', /entry 1 has "keyless" that is not a list of \{"issuer", "subject"\}/],
      ['{"images": [{"match": "x/*", "keys": ["-----BEGIN PUBLIC KEY-----\\nnope\\n-----END PUBLIC KEY-----\\n"]}]}', /cosign key --image-policy .*p\.json entry 1, key 1 is not a PEM public key/],
      ['{"images": [{"match": "x/*", "keys": ["missing.pub"]}]}', /cannot read key .*missing\.pub/],
    ]
    for (const [text, error] of cases) {
      await writeFile(join(dir, 'p.json'), text)
      const e = await t.throwsAsync(readImagePolicyFile(join(dir, 'p.json')))
      t.regex(e!.message, error, text)
    }
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})
