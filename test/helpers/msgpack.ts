/**
 * Packs a flat array of integers and strings as MessagePack, the shape lua/batch.lua answers
 * (cmsgpack.pack), for fake clients that answer batch calls without Redis. Widths as cmsgpack
 * picks them (the smallest that holds the value).
 */
export function encodeMsgpackArray(values: readonly (number | string)[]): Buffer {
  const parts: Buffer[] = [header(values.length, 0x90, 0xdc, 0xdd, 16)];
  for (const value of values) parts.push(typeof value === 'string' ? encodeString(value) : encodeInteger(value));
  return Buffer.concat(parts);
}

function header(length: number, fix: number, type16: number, type32: number, fixLimit: number): Buffer {
  if (length < fixLimit) return Buffer.from([fix + length]);
  if (length <= 0xffff) return Buffer.from([type16, length >> 8, length & 0xff]);
  const bytes = Buffer.alloc(5);
  bytes[0] = type32;
  bytes.writeUInt32BE(length, 1);
  return bytes;
}

function encodeString(value: string): Buffer {
  const utf8 = Buffer.from(value, 'utf8');
  const head = utf8.length < 32 ? Buffer.from([0xa0 + utf8.length]) : utf8.length <= 0xff ? Buffer.from([0xd9, utf8.length]) : header(utf8.length, 0, 0xda, 0xdb, 0);
  return Buffer.concat([head, utf8]);
}

function encodeInteger(value: number): Buffer {
  if (!Number.isSafeInteger(value)) throw new Error(`not a safe integer: ${value}`);
  if (value >= 0 && value <= 0x7f) return Buffer.from([value]);
  if (value < 0 && value >= -32) return Buffer.from([0x100 + value]);
  const bytes = Buffer.alloc(9);
  if (value >= 0) {
    bytes[0] = 0xcf;
    bytes.writeUInt32BE(Math.floor(value / 2 ** 32), 1);
    bytes.writeUInt32BE(value % 2 ** 32, 5);
  } else {
    bytes[0] = 0xd3;
    bytes.writeBigInt64BE(BigInt(value), 1);
  }
  return bytes;
}
