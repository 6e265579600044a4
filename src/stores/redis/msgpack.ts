/**
 * Reads the MessagePack that lua/batch.lua answers (Redis's built-in `cmsgpack.pack` of a flat Lua
 * array of integers and strings). One bulk string instead of an array of hundreds of RESP integers:
 * a client's RESP decoder spends ~0.2 µs per integer, this ~0.02, and Redis writes one reply
 * instead of hundreds. Only what `cmsgpack.pack` writes for such an array is read (integers of
 * every width, doubles, strings, nil, booleans); anything else is a malformed reply.
 */

/** A value of the array: what Lua held (a number, a string, nil, a boolean). */
export type MsgpackValue = number | string | null | boolean;

/** Why a reply could not be read; the caller names the script. */
export class MsgpackError extends Error {}

const TWO_32 = 2 ** 32;

/** The array packed in `bytes` (its elements only: no nested arrays or maps). */
export function decodeMsgpackArray(bytes: Buffer): MsgpackValue[] {
  let at = 0;
  const need = (count: number): void => {
    if (at + count > bytes.length) throw new MsgpackError(`truncated at byte ${at}`);
  };
  need(1);
  const head = bytes[at++]!;
  let length: number;
  if (head >= 0x90 && head <= 0x9f) length = head - 0x90;
  else if (head === 0xdc) {
    need(2);
    length = bytes.readUInt16BE(at);
    at += 2;
  } else if (head === 0xdd) {
    need(4);
    length = bytes.readUInt32BE(at);
    at += 4;
  } else throw new MsgpackError(`expected an array, got type byte 0x${head.toString(16)}`);

  const values = new Array<MsgpackValue>(length);
  for (let i = 0; i < length; i++) {
    need(1);
    const type = bytes[at++]!;
    let value: MsgpackValue;
    let size = 0; // bytes of a string that follow its header
    if (type <= 0x7f) value = type;
    else if (type >= 0xe0) value = type - 0x100;
    else if (type >= 0xa0 && type <= 0xbf) {
      size = type - 0xa0;
      value = '';
    } else {
      switch (type) {
        case 0xc0:
          value = null;
          break;
        case 0xc2:
          value = false;
          break;
        case 0xc3:
          value = true;
          break;
        case 0xcc:
          need(1);
          value = bytes[at]!;
          at += 1;
          break;
        case 0xcd:
          need(2);
          value = bytes.readUInt16BE(at);
          at += 2;
          break;
        case 0xce:
          need(4);
          value = bytes.readUInt32BE(at);
          at += 4;
          break;
        case 0xcf:
          need(8);
          value = bytes.readUInt32BE(at) * TWO_32 + bytes.readUInt32BE(at + 4);
          at += 8;
          break;
        case 0xd0:
          need(1);
          value = bytes.readInt8(at);
          at += 1;
          break;
        case 0xd1:
          need(2);
          value = bytes.readInt16BE(at);
          at += 2;
          break;
        case 0xd2:
          need(4);
          value = bytes.readInt32BE(at);
          at += 4;
          break;
        case 0xd3:
          need(8);
          value = bytes.readInt32BE(at) * TWO_32 + bytes.readUInt32BE(at + 4);
          at += 8;
          break;
        case 0xca:
          need(4);
          value = bytes.readFloatBE(at);
          at += 4;
          break;
        case 0xcb:
          need(8);
          value = bytes.readDoubleBE(at);
          at += 8;
          break;
        case 0xd9:
          need(1);
          size = bytes[at]!;
          at += 1;
          value = '';
          break;
        case 0xda:
          need(2);
          size = bytes.readUInt16BE(at);
          at += 2;
          value = '';
          break;
        case 0xdb:
          need(4);
          size = bytes.readUInt32BE(at);
          at += 4;
          value = '';
          break;
        default:
          throw new MsgpackError(`unexpected type byte 0x${type.toString(16)} at byte ${at - 1}`);
      }
    }
    if (value === '' && size > 0) {
      need(size);
      value = bytes.toString('utf8', at, at + size);
      at += size;
    }
    values[i] = value;
  }
  if (at !== bytes.length) throw new MsgpackError(`${bytes.length - at} bytes after the array`);
  return values;
}
