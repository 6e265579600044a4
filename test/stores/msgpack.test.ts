/**
 * The MessagePack reader of batch replies (src/stores/redis/msgpack.ts) against Redis's own
 * `cmsgpack.pack`, the writer it reads: every integer width, doubles, strings of every header,
 * arrays of every header; and malformed input as a MsgpackError, never a wrong array.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MsgpackError, decodeMsgpackArray } from '../../src/stores/redis/msgpack.js';
import { newRedisClient } from '../helpers/redis.js';

let client: Redis;

beforeAll(() => {
  client = newRedisClient();
});

afterAll(async () => {
  await client.quit();
});

/** `values` packed by Redis (each ARGV turned into a Lua number or kept as a string). */
async function packedByRedis(values: readonly (number | string)[]): Promise<Buffer> {
  const kinds = values.map((value) => (typeof value === 'number' ? 'n' : 's'));
  const script = `local out = {} for i = 1, #ARGV, 2 do if ARGV[i] == 'n' then out[#out + 1] = tonumber(ARGV[i + 1]) else out[#out + 1] = ARGV[i + 1] end end return cmsgpack.pack(out)`;
  const args = values.flatMap((value, i) => [kinds[i]!, typeof value === 'number' ? String(value) : value]);
  return (await client.callBuffer('EVAL', script, 0, ...args)) as Buffer;
}

describe('decodeMsgpackArray', () => {
  it('reads integers of every width, positive and negative, as cmsgpack writes them', async () => {
    const integers = [
      0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 1_733_000_000_000, Number.MAX_SAFE_INTEGER,
      -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1, -1_733_000_000_000, Number.MIN_SAFE_INTEGER,
    ];
    expect(decodeMsgpackArray(await packedByRedis(integers))).toEqual(integers);
  });

  it('reads doubles, and strings of every header length (UTF-8)', async () => {
    const values = [1.5, -0.25, '', 'a', 'é', 'x'.repeat(31), 'x'.repeat(32), 'y'.repeat(255), 'y'.repeat(256), 'z'.repeat(70_000)];
    expect(decodeMsgpackArray(await packedByRedis(values))).toEqual(values);
  });

  it.each([0, 15, 16, 65_535, 65_536])('reads an array of %i elements', async (length) => {
    const script = `local out = {} for i = 1, tonumber(ARGV[1]) do out[i] = i end return cmsgpack.pack(out)`;
    const packed = (await client.callBuffer('EVAL', script, 0, String(length))) as Buffer;
    expect(decodeMsgpackArray(packed)).toEqual(Array.from({ length }, (_, i) => i + 1));
  });

  it.each([
    ['nothing', Buffer.alloc(0), /truncated/],
    ['a map', Buffer.from([0x81, 0x01, 0x02]), /expected an array/],
    ['an array cut short', Buffer.from([0x92, 0x01]), /truncated/],
    ['a number cut short', Buffer.from([0x91, 0xcf, 0x00, 0x01]), /truncated/],
    ['a string cut short', Buffer.from([0x91, 0xa3, 0x61]), /truncated/],
    ['bytes after the array', Buffer.from([0x91, 0x01, 0x02]), /1 bytes after the array/],
    ['a nested array', Buffer.from([0x91, 0x91, 0x01]), /unexpected type byte 0x91/],
  ])('refuses %s with a MsgpackError', (_label, bytes, message) => {
    expect(() => decodeMsgpackArray(bytes)).toThrow(MsgpackError);
    expect(() => decodeMsgpackArray(bytes)).toThrow(message);
  });
});
