/**
 * Redis Cluster slot grouping. Keys of one script call must share a slot; core gives all keys of
 * one id the same tag, but a per-route table may mix ids, so RedisStore splits such calls by tag.
 */

/**
 * The part of `key` that Redis Cluster hashes: the text between the first `{` and the first `}`
 * after it when that text is not empty, else the whole key (cluster spec, "hash tags").
 * Keys with equal results always share a slot.
 */
export function hashedPart(key: string): string {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}

/**
 * Indexes of `keys` grouped by hashed part, groups in order of first appearance and indexes
 * ascending inside each group. `undefined` when all share one (the common case: no allocation).
 */
export function groupBySlotTag(keys: readonly string[]): number[][] | undefined {
  const first = hashedPart(keys[0] ?? '');
  let i = 1;
  while (i < keys.length && hashedPart(keys[i]!) === first) i++;
  if (i === keys.length) return undefined;
  const groups = new Map<string, number[]>();
  keys.forEach((key, index) => {
    const part = hashedPart(key);
    const group = groups.get(part);
    if (group) group.push(index);
    else groups.set(part, [index]);
  });
  return [...groups.values()];
}

/** CRC16-XMODEM (polynomial 0x1021), the checksum Redis Cluster hashes keys with, one byte at a time. */
const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

/** Redis Cluster's slot of `key` (0 … 16383): CRC16 of its hashed part's UTF-8 bytes, mod 16384. */
export function keySlot(key: string): number {
  const part = hashedPart(key);
  let crc = 0;
  let ascii = true;
  for (let i = 0; i < part.length; i++) {
    const code = part.charCodeAt(i);
    if (code >= 0x80) {
      ascii = false;
      break;
    }
    crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ code) & 0xff]!;
  }
  if (!ascii) {
    crc = 0;
    for (const byte of Buffer.from(part, 'utf8')) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  }
  return crc & 0x3fff;
}
