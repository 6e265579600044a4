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
