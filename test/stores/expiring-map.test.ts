import { describe, expect, it } from 'vitest';
import { ExpiringMap } from '../../src/stores/memory/expiring-map.js';

const entry = (expiresAt: number) => ({ expiresAt });
const keysOf = (map: ExpiringMap<{ expiresAt: number }>, now: number, keys: string[]) => keys.filter((key) => map.find(key, now) !== undefined);

describe('ExpiringMap', () => {
  it('evicts the least recently used keys: get and set mark a key used, find does not', () => {
    const map = new ExpiringMap<{ expiresAt: number }>({ maxKeys: 3 });
    for (const key of ['a', 'b', 'c']) map.set(key, entry(100));
    map.get('a', 0); // order b, c, a
    map.find('b', 0); // unchanged
    map.set('c', entry(100)); // order b, a, c
    map.set('d', entry(100));
    expect(map.evictOverflow()).toBe(1);
    expect(keysOf(map, 0, ['a', 'b', 'c', 'd'])).toEqual(['a', 'c', 'd']);
    map.set('e', entry(100));
    map.set('f', entry(100));
    expect(map.evictOverflow()).toBe(2);
    expect(keysOf(map, 0, ['a', 'c', 'd', 'e', 'f'])).toEqual(['d', 'e', 'f']);
  });

  it('drops an expired entry on access and counts weights', () => {
    const map = new ExpiringMap<{ expiresAt: number; bytes: number }>({ maxWeight: 10, weigh: (e) => e.bytes });
    map.set('a', { expiresAt: 5, bytes: 4 });
    map.set('b', { expiresAt: 50, bytes: 4 });
    expect(map.weight).toBe(8);
    expect(map.get('a', 5)).toBeUndefined();
    expect(map.size).toBe(1);
    expect(map.weight).toBe(4);
    map.set('b', { expiresAt: 50, bytes: 7 }); // replaced: its old weight goes
    expect(map.weight).toBe(7);
    map.set('c', { expiresAt: 50, bytes: 4 });
    expect(map.evictOverflow()).toBe(1);
    expect(map.find('b', 0)).toBeUndefined();
    expect(map.weight).toBe(4);
  });

  it('sweeps every expired key within size / budget sweeps, also while keys move and go', () => {
    const map = new ExpiringMap<{ expiresAt: number }>();
    for (let i = 0; i < 100; i++) map.set(`k${i}`, entry(i % 2 === 0 ? 10 : 1_000));
    let removed = map.sweep(20, 10); // visits k0..k9
    expect(removed).toBe(5);
    map.get('k11', 20); // the cursor's next keys move and go under it
    map.delete('k10');
    map.get('k13', 20);
    for (let sweeps = 0; sweeps < 10; sweeps++) removed += map.sweep(20, 10);
    expect(removed).toBe(50 - 1); // k10 was deleted by hand
    expect(map.size).toBe(50);
    expect(map.sweep(2_000, 1_000)).toBe(50);
    expect(map.size).toBe(0);
  });
});
