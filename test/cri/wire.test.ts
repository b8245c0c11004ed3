// The hand-written protobuf wire code, checked against bytes worked out from the encoding spec.
import test from 'ava';
import { MessageReader, MessageWriter } from './wire.js';
import { decodeImageStatusResponse, encodePullImageRequest } from './messages.js';

test('varints, strings, bools and maps encode as protobuf does', (t) => {
  const w = new MessageWriter().int(1, 150).string(2, 'testing').bool(3, true).int(4, 0).string(5, '');
  // field 1 varint 150 = 08 96 01; field 2 "testing" = 12 07 …; field 3 true = 18 01; defaults omitted
  t.is(w.finish().toString('hex'), '089601' + '120774657374696e67' + '1801');
  const big = new MessageReader(new MessageWriter().int(4, 2 ** 40).int(5, -1).finish());
  t.is(big.int(4), 2 ** 40);
  t.is(big.int(5), -1, 'negative int64 as 10-byte two\'s complement');
  const m = new MessageReader(new MessageWriter().map(6, { a: '1', b: '2' }).finish());
  t.deepEqual(m.map(6), { a: '1', b: '2' });
});

test('PullImageRequest carries image spec (1) and AuthConfig (2) with the CRI field numbers', (t) => {
  const r = new MessageReader(encodePullImageRequest('registry.k8s.io/pause:3.10', { username: 'u', password: 'p', auth: 'dTpw', serverAddress: 'http://h:5000' }));
  t.is(r.message(1)?.string(1), 'registry.k8s.io/pause:3.10');
  const auth = r.message(2)!;
  t.deepEqual([auth.string(1), auth.string(2), auth.string(3), auth.string(4)], ['u', 'p', 'dTpw', 'http://h:5000']);
  t.false(r.has(3), 'no sandbox config unless given');
});

test('ImageStatusResponse: unset image means not present; unknown fields are skipped', (t) => {
  t.is(decodeImageStatusResponse(Buffer.alloc(0)).image, null);
  const image = new MessageWriter().string(1, 'sha256:abc').strings(2, ['x:1']).int(4, 42).bool(8, true).string(99, 'future field');
  const status = decodeImageStatusResponse(new MessageWriter().message(1, image).finish());
  t.deepEqual(status.image, { id: 'sha256:abc', repoTags: ['x:1'], repoDigests: [], size: 42, uid: undefined, username: '', pinned: true });
});
