// Minimal protobuf (proto3) wire format: just enough to speak the few CRI
// `runtime.v1` messages the tests need. Field numbers live in messages.ts.

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

function varint(value: bigint): Buffer {
  if (value < 0n) value = BigInt.asUintN(64, value); // negative int64 → 10-byte two's complement
  const out: number[] = [];
  while (value > 0x7fn) {
    out.push(Number(value & 0x7fn) | 0x80);
    value >>= 7n;
  }
  out.push(Number(value));
  return Buffer.from(out);
}

/** Appends fields in order; proto3 defaults (empty, 0, false) are left out. */
export class MessageWriter {
  private readonly parts: Buffer[] = [];

  private tag(field: number, wire: number): void {
    this.parts.push(varint(BigInt((field << 3) | wire)));
  }

  string(field: number, value: string | undefined): this {
    if (value) this.bytes(field, Buffer.from(value, 'utf8'));
    return this;
  }

  strings(field: number, values: readonly string[] | undefined): this {
    for (const v of values ?? []) {
      this.tag(field, WIRE_BYTES);
      const b = Buffer.from(v, 'utf8');
      this.parts.push(varint(BigInt(b.length)), b);
    }
    return this;
  }

  bytes(field: number, value: Uint8Array | undefined): this {
    if (!value || value.length === 0) return this;
    this.tag(field, WIRE_BYTES);
    this.parts.push(varint(BigInt(value.length)), Buffer.from(value));
    return this;
  }

  /** int32/int64/uint32/uint64/enum. */
  int(field: number, value: number | bigint | undefined): this {
    if (value === undefined || value === 0 || value === 0n) return this;
    this.tag(field, WIRE_VARINT);
    this.parts.push(varint(BigInt(value)));
    return this;
  }

  bool(field: number, value: boolean | undefined): this {
    if (value) this.int(field, 1);
    return this;
  }

  /** A sub-message; written even when empty, because presence matters for messages. */
  message(field: number, body: MessageWriter | undefined): this {
    if (!body) return this;
    const b = body.finish();
    this.tag(field, WIRE_BYTES);
    this.parts.push(varint(BigInt(b.length)), b);
    return this;
  }

  /** map<string,string>: repeated entry messages with key = 1, value = 2. */
  map(field: number, entries: Readonly<Record<string, string>> | undefined): this {
    for (const [k, v] of Object.entries(entries ?? {})) {
      this.message(field, new MessageWriter().string(1, k).string(2, v));
    }
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

type FieldValue = bigint | Buffer;

/** A decoded message: every occurrence of every field, unknown ones included. */
export class MessageReader {
  private readonly fields = new Map<number, FieldValue[]>();

  constructor(buf: Buffer) {
    let pos = 0;
    const readVarint = (): bigint => {
      let result = 0n;
      let shift = 0n;
      for (;;) {
        if (pos >= buf.length) throw new Error('protobuf: truncated varint');
        const byte = buf[pos++]!;
        result |= BigInt(byte & 0x7f) << shift;
        if ((byte & 0x80) === 0) return result;
        shift += 7n;
        if (shift > 63n) throw new Error('protobuf: varint too long');
      }
    };
    const take = (n: number): Buffer => {
      if (pos + n > buf.length) throw new Error('protobuf: truncated field');
      const b = buf.subarray(pos, pos + n);
      pos += n;
      return b;
    };
    while (pos < buf.length) {
      const key = readVarint();
      const field = Number(key >> 3n);
      const wire = Number(key & 7n);
      let value: FieldValue;
      switch (wire) {
        case WIRE_VARINT:
          value = readVarint();
          break;
        case WIRE_FIXED64:
          value = take(8);
          break;
        case WIRE_BYTES:
          value = take(Number(readVarint()));
          break;
        case WIRE_FIXED32:
          value = take(4);
          break;
        default:
          throw new Error(`protobuf: unsupported wire type ${wire} for field ${field}`);
      }
      const list = this.fields.get(field);
      if (list) list.push(value);
      else this.fields.set(field, [value]);
    }
  }

  private last(field: number): FieldValue | undefined {
    const list = this.fields.get(field);
    return list?.[list.length - 1];
  }

  has(field: number): boolean {
    return this.fields.has(field);
  }

  string(field: number): string {
    const v = this.last(field);
    return Buffer.isBuffer(v) ? v.toString('utf8') : '';
  }

  strings(field: number): string[] {
    return (this.fields.get(field) ?? []).filter(Buffer.isBuffer).map((b) => b.toString('utf8'));
  }

  /** uint64/int64 as a JS number (sizes and timestamps fit comfortably). */
  int(field: number): number {
    const v = this.last(field);
    return typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : 0;
  }

  bool(field: number): boolean {
    return this.int(field) !== 0;
  }

  message(field: number): MessageReader | undefined {
    const v = this.last(field);
    return Buffer.isBuffer(v) ? new MessageReader(v) : undefined;
  }

  messages(field: number): MessageReader[] {
    return (this.fields.get(field) ?? []).filter(Buffer.isBuffer).map((b) => new MessageReader(b));
  }

  map(field: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const entry of this.messages(field)) out[entry.string(1)] = entry.string(2);
    return out;
  }
}
