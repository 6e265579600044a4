/**
 * Reads the MessagePack that lua/batch.lua answers (Redis's built-in `cmsgpack.pack` of a flat Lua
 * array of integers and strings). One bulk string instead of an array of hundreds of RESP integers:
 * reading 7 integers per decision cost ioredis ~1.6–2.7 µs per decision, this 0.4–0.75 (reply
 * microbench, the call's own costs included), and Redis writes one reply instead of hundreds. Only what `cmsgpack.pack` writes for such an array is read (integers of
 * every width, doubles, strings, nil, booleans); anything else is a malformed reply.
 */

/** A value of the array: what Lua held (a number, a string, nil, a boolean). */
export type MsgpackValue = number | string | null | boolean;

/** Why a reply could not be read; the caller names the script. */
export class MsgpackError extends Error {}

const TWO_32 = 2 ** 32;

type Reader = (bytes: Buffer, at: number) => number;

/** Values of a fixed size after their type byte: its size in bytes and how to read it. */
const FIXED_SIZE: Readonly<Record<number, readonly [number, Reader]>> = {
  0xcc: [1, (bytes, at) => bytes[at]!],
  0xcd: [2, (bytes, at) => bytes.readUInt16BE(at)],
  0xce: [4, (bytes, at) => bytes.readUInt32BE(at)],
  0xcf: [8, (bytes, at) => bytes.readUInt32BE(at) * TWO_32 + bytes.readUInt32BE(at + 4)],
  0xd0: [1, (bytes, at) => bytes.readInt8(at)],
  0xd1: [2, (bytes, at) => bytes.readInt16BE(at)],
  0xd2: [4, (bytes, at) => bytes.readInt32BE(at)],
  0xd3: [8, (bytes, at) => bytes.readInt32BE(at) * TWO_32 + bytes.readUInt32BE(at + 4)],
  0xca: [4, (bytes, at) => bytes.readFloatBE(at)],
  0xcb: [8, (bytes, at) => bytes.readDoubleBE(at)],
};

/** Headers of strings (str8, str16, str32) and of the array (array16, array32): the size of the length that follows. */
const LENGTH_SIZE: Readonly<Record<number, number>> = { 0xd9: 1, 0xda: 2, 0xdb: 4, 0xdc: 2, 0xdd: 4 };

const CONSTANTS: Readonly<Record<number, MsgpackValue>> = { 0xc0: null, 0xc2: false, 0xc3: true };

/** The array packed in `bytes` (its elements only: no nested arrays or maps). */
export function decodeMsgpackArray(bytes: Buffer): MsgpackValue[] {
  let at = 0;
  const need = (count: number): void => {
    if (at + count > bytes.length) throw new MsgpackError(`truncated at byte ${at}`);
  };
  /** The length of `lengthSize` bytes at `at` (1, 2 or 4, big-endian), moving past it. */
  const readLength = (lengthSize: number): number => {
    need(lengthSize);
    const length = lengthSize === 1 ? bytes[at]! : lengthSize === 2 ? bytes.readUInt16BE(at) : bytes.readUInt32BE(at);
    at += lengthSize;
    return length;
  };

  need(1);
  const head = bytes[at++]!;
  let length: number;
  if (head >= 0x90 && head <= 0x9f) length = head - 0x90;
  else if (head === 0xdc || head === 0xdd) length = readLength(LENGTH_SIZE[head]!);
  else throw new MsgpackError(`expected an array, got type byte 0x${head.toString(16)}`);

  const values = new Array<MsgpackValue>(length);
  for (let i = 0; i < length; i++) {
    need(1);
    const type = bytes[at++]!;
    if (type <= 0x7f) {
      values[i] = type; // positive fixint
      continue;
    }
    if (type >= 0xe0) {
      values[i] = type - 0x100; // negative fixint
      continue;
    }
    const fixed = FIXED_SIZE[type];
    if (fixed !== undefined) {
      need(fixed[0]);
      values[i] = fixed[1](bytes, at);
      at += fixed[0];
      continue;
    }
    let size: number;
    if (type >= 0xa0 && type <= 0xbf) size = type - 0xa0; // fixstr
    else if (type >= 0xd9 && type <= 0xdb) size = readLength(LENGTH_SIZE[type]!);
    else if (type in CONSTANTS) {
      values[i] = CONSTANTS[type]!;
      continue;
    } else throw new MsgpackError(`unexpected type byte 0x${type.toString(16)} at byte ${at - 1}`);
    need(size);
    values[i] = bytes.toString('utf8', at, at + size);
    at += size;
  }
  if (at !== bytes.length) throw new MsgpackError(`${bytes.length - at} bytes after the array`);
  return values;
}
