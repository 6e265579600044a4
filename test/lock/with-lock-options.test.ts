/** withLock options are validated once, at construction, with ConfigErrors naming the option. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { withLock as expressWithLock } from '../../src/adapters/express/with-lock.js';
import { withLock as koaWithLock } from '../../src/adapters/koa/with-lock.js';

describe.each([
  ['express', expressWithLock],
  ['koa', koaWithLock],
] as [string, (options?: unknown, handler?: unknown) => unknown][])('%s withLock options', (_name, withLock) => {
  it.each([
    [{ ttl: 0 }, /^ttl must be/],
    [{ ttl: '30s', maxHold: '10s' }, /^maxHold must be at least the lease ttl/],
    [{ wait: -1 }, /^wait must be 0 or a whole number/],
    [{ timeout: 'soon' }, /^timeout must be/],
    [{ key: 'idempotency-key' }, /^key must be a key extractor/],
    [{ scope: [] }, /^scope must be a key extractor/],
    [{ onStoreError: 'ignore' }, /^onStoreError must be 'open', 'closed'/],
    [{ onBusy: 409 }, /^onBusy must be a function/],
    [{ prefix: 'has space' }, /^prefix must be/],
    [{ logger: {} }, /^logger must be an object with a warn/],
    [{ store: { consume() {} } }, /^store must be a Store with acquireLock/],
    [{ replay: { ttl: '24h' }, store: { acquireLock() {}, extendLock() {}, releaseLock() {} } }, /^store must be a Store with beginIdempotent/],
    [{ replay: 'yes' }, /^replay options must be an object/],
    [{ replay: { ttl: 0 } }, /^replay.ttl must be/],
    [{ replay: { maxBodyBytes: -1 } }, /^replay.maxBodyBytes must be an integer from 0/],
    [{ replay: { storeServerErrors: 'no' } }, /^replay.storeServerErrors must be true or false/],
    [{ replay: { headers: ['Set-Cookie'] } }, /^replay.headers\[0\] "Set-Cookie" is never replayed/],
    [{ replay: { headers: ['bad header'] } }, /^replay.headers\[0\] must be an HTTP header name/],
    [{ replay: { fingerprint: 'body' } }, /^replay.fingerprint must be a function/],
    [{ replay: { cache: true } }, /^replay has no option "cache"/],
    [{ lease: '30s' }, /^withLock has no option "lease"/],
  ])('rejects %j', (options, message) => {
    expect(() => withLock(options as never)).toThrow(ConfigError);
    expect(() => withLock(options as never)).toThrow(message);
  });

  it('rejects a handler that is not a function', () => {
    expect(() => withLock({}, 'handler' as never)).toThrow(/handler must be a function/);
  });

  it('accepts the documented forms', () => {
    expect(typeof withLock()).toBe('function');
    expect(typeof withLock({ ttl: '30s', wait: 0, replay: true })).toBe('function');
    expect(typeof withLock({ key: [() => undefined, () => 'k'], scope: () => 'me', replay: { ttl: '1h', headers: ['X-Order-Id'], maxBodyBytes: 0 } })).toBe('function');
    expect(typeof withLock({ ttl: undefined, replay: undefined })).toBe('function');
  });
});
