/**
 * Store key names. Every key of one store call shares one hash tag that ratelock owns: the tag is
 * a digest of the caller's id, so no id (`''`, `}{`, `{x}y`, 100 kB) can split a call across
 * Redis Cluster slots, steer its slot, or make a key longer than ~100 bytes.
 */
import { createHash } from 'node:crypto';
import { ConfigError } from './errors.js';
import { formatValue } from './duration.js';
import type { IdempotencyKeys, LockKeys } from './store.js';

/** Longest accepted `prefix`, so that every key stays well under 200 bytes. */
export const MAX_PREFIX_LENGTH = 64;
const PREFIX_PATTERN = /^[\x21-\x7a\x7c\x7e]*$/; // printable ASCII without space, '{' and '}'

/** 22 base64url characters of SHA-256 (132 bits): collision-free in practice, never contains braces. */
export function digest(id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 22);
}

/** Throws a ConfigError unless `prefix` is short printable ASCII without braces or spaces. */
export function validatePrefix(prefix: unknown, option = 'prefix'): string {
  if (typeof prefix !== 'string' || prefix.length > MAX_PREFIX_LENGTH || !PREFIX_PATTERN.test(prefix)) {
    throw new ConfigError(
      `${option} must be a string of at most ${MAX_PREFIX_LENGTH} printable ASCII characters without spaces, '{' or '}'; got ${formatValue(prefix)}`,
    );
  }
  return prefix;
}

/** The hash-tagged part shared by all keys of one id: `<prefix>{<digest>}`. */
export function taggedBase(prefix: string, id: string): string {
  return `${prefix}{${digest(id)}}`;
}

/** Key of one limit's log, e.g. `rl:{Zm9v…}:1m`. `limitName` tells limits of one id apart. */
export function limitKey(prefix: string, id: string, limitName: string): string {
  return `${taggedBase(prefix, id)}:${limitName}`;
}

export function lockKeys(prefix: string, id: string): LockKeys {
  const base = taggedBase(prefix, id);
  return { lock: base, fence: `${base}:fence` };
}

export function idempotencyKeys(prefix: string, id: string): IdempotencyKeys {
  const base = taggedBase(prefix, id);
  return { record: base, fence: `${base}:fence` };
}
