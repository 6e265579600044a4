import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { keys } from '../../src/keys/index.js';
import { ipKeyPart } from '../../src/keys/ip-address.js';

/** A bare request as the extractor sees it (no `app`: the proxy checks stay silent). */
const requestFrom = (ip: string) => ({ ip, headers: {} });
const keyOf = (extractor: ReturnType<typeof keys.ip>, ip: string) => extractor(requestFrom(ip)) as string;

const randomGroup = () => Math.floor(Math.random() * 0x10000);
const hex = (n: number) => n.toString(16);

describe('keys.ip(): IPv6 rotation inside one delegation (RELIABILITY G2)', () => {
  it('keys 1000 random addresses of one /56 as one bucket at the default subnet', () => {
    const ip = keys.ip();
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const group3 = 0xcd00 | Math.floor(Math.random() * 256);
      const address = ['2001', 'db8', 'ab', hex(group3), ...Array.from({ length: 4 }, () => hex(randomGroup()))].join(':');
      seen.add(keyOf(ip, i % 2 === 0 ? address : address.toUpperCase()));
    }
    expect([...seen]).toEqual(['ip:2001:db8:ab:cd00::/56']);
  });

  it('keys 1000 random addresses of one /64 as one bucket, at /56 and at /64', () => {
    const at56 = new Set<string>();
    const at64 = new Set<string>();
    const ip64 = keys.ip({ ipv6Subnet: 64 });
    for (let i = 0; i < 1000; i++) {
      const address = `2001:db8:1:2:${hex(randomGroup())}:${hex(randomGroup())}:${hex(randomGroup())}:${hex(randomGroup())}`;
      at56.add(keyOf(keys.ip(), address));
      at64.add(keyOf(ip64, address));
    }
    expect([...at56]).toEqual(['ip:2001:db8:1::/56']);
    expect([...at64]).toEqual(['ip:2001:db8:1:2::/64']);
  });

  it('keeps different /56 delegations apart, and different /64s apart at /64', () => {
    expect(keyOf(keys.ip(), '2001:db8:0:100::1')).not.toBe(keyOf(keys.ip(), '2001:db8:0:200::1'));
    const ip64 = keys.ip({ ipv6Subnet: 64 });
    expect(keyOf(ip64, '2001:db8:0:101::1')).toBe('ip:2001:db8:0:101::/64');
    expect(keyOf(ip64, '2001:db8:0:102::1')).toBe('ip:2001:db8:0:102::/64');
  });

  it('masks at any subnet from 32 to 64 bits', () => {
    const address = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    expect(keyOf(keys.ip({ ipv6Subnet: 32 }), address)).toBe('ip:ffff:ffff::/32');
    expect(keyOf(keys.ip({ ipv6Subnet: 48 }), address)).toBe('ip:ffff:ffff:ffff::/48');
    expect(keyOf(keys.ip({ ipv6Subnet: 50 }), address)).toBe('ip:ffff:ffff:ffff:c000::/50');
    expect(keyOf(keys.ip({ ipv6Subnet: 63 }), address)).toBe('ip:ffff:ffff:ffff:fffe::/63');
  });
});

describe('keys.ip(): address forms', () => {
  const ip = keys.ip();

  it.each([['1.2.3.4'], ['::ffff:1.2.3.4'], ['::ffff:102:304'], ['::FFFF:0102:0304'], ['0:0:0:0:0:ffff:1.2.3.4'], ['1.2.3.4:5678'], ['[::ffff:1.2.3.4]:443']])(
    'keys %s as the IPv4 address',
    (address) => expect(keyOf(ip, address)).toBe('ip:1.2.3.4'),
  );

  it('keeps a dotted-quad IPv6 address that is not IPv4-mapped as IPv6', () => {
    expect(keyOf(ip, '2001:db8::1.2.3.4')).toBe('ip:2001:db8::/56');
    expect(keyOf(keys.ip({ ipv6Subnet: 64 }), '2001:db8:0:7::1.2.3.4')).toBe('ip:2001:db8:0:7::/64');
    // IPv4-compatible (deprecated) addresses are not mapped ones either.
    expect(keyOf(ip, '::1.2.3.4')).toBe('ip:::/56');
  });

  it.each([
    ['[2001:db8::1]:80', 'ip:2001:db8::/56'],
    ['[::1]:80', 'ip:::/56'],
    ['fe80::1%eth0', 'ip:fe80::/56'],
    ['[fe80::1%25en0]:8080', 'ip:fe80::/56'],
    ['10.0.0.1:1', 'ip:10.0.0.1'],
    ['10.0.0.1:65535', 'ip:10.0.0.1'],
  ])('never keys the port or zone of %s', (address, key) => expect(keyOf(ip, address)).toBe(key));

  it('normalises notation (RFC 5952: lower case, no leading zeros, longest zero run compressed)', () => {
    expect(keyOf(ip, '2001:0DB8:0000:0000:0001:0000:0000:0001')).toBe('ip:2001:db8::/56');
    expect(keyOf(ip, '2001:db8:0:0:1::1')).toBe('ip:2001:db8::/56');
    expect(keyOf(ip, '1:0:0:100::')).toBe('ip:1:0:0:100::/56');
    expect(keyOf(ip, '001.002.003.004')).toBe('ip:1.2.3.4');
  });

  it.each([['garbage'], ['1.2.3'], ['1.2.3.256'], ['1:2:3:4:5:6:7:8:9'], ['1::2::3'], [':1:2:3:4:5:6:7'], ['12345::1'], ['1:2:3:4:5:6:7:'], ['::ffff:1.2.3.4.5'], ['a'.repeat(300)]])(
    'keys the unparsable address %s as itself, its own bucket',
    (address) => expect(keyOf(ip, address)).toBe(`ip:${address}`),
  );

  it('agrees with an independent model on random addresses in every notation (fast-check)', () => {
    const groupsArb = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });
    fc.assert(
      fc.property(groupsArb, fc.integer({ min: 32, max: 64 }), fc.constantFrom('full', 'canonical', 'upper'), (groups, subnet, notation) => {
        const full = groups.map(hex).join(':');
        const canonical = new URL(`http://[${full}]`).hostname.slice(1, -1);
        const text = notation === 'full' ? full : notation === 'canonical' ? canonical : canonical.toUpperCase();
        expect(isIPv6(text)).toBe(true);
        expect(ipKeyPart(text, subnet)).toBe(modelKey(groups, subnet));
      }),
      { numRuns: 2000 },
    );
  });
});

/** The expected key part, computed with BigInt masking and the URL parser's RFC 5952 formatting. */
function modelKey(groups: readonly number[], subnet: number): string {
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  const value = groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
  const mask = ((1n << BigInt(subnet)) - 1n) << BigInt(128 - subnet);
  const masked = value & mask;
  const maskedGroups = Array.from({ length: 8 }, (_, k) => Number((masked >> BigInt(112 - 16 * k)) & 0xffffn));
  const canonical = new URL(`http://[${maskedGroups.map(hex).join(':')}]`).hostname.slice(1, -1);
  return `${canonical}/${subnet}`;
}

describe('keys.ip(): where the address comes from', () => {
  const ip = keys.ip();

  it("uses the framework's req.ip / ctx.ip and never reads X-Forwarded-For itself", () => {
    expect(ip({ ip: '203.0.113.7', headers: { 'x-forwarded-for': '198.51.100.1' } })).toBe('ip:203.0.113.7');
  });

  it('falls back to the socket address (Express req.socket, Koa ctx.req.socket)', () => {
    expect(ip({ headers: {}, socket: { remoteAddress: '::ffff:198.51.100.9' } })).toBe('ip:198.51.100.9');
    expect(ip({ ip: '', headers: {}, req: { socket: { remoteAddress: '198.51.100.10' } } })).toBe('ip:198.51.100.10');
  });

  it('keys a request without any address (socket already gone) as ip:unknown rather than throwing', () => {
    expect(ip({ headers: {} })).toBe('ip:unknown');
    expect(ip({ ip: 42, headers: {}, socket: {} })).toBe('ip:unknown');
  });
});

describe('keys.ip(): options', () => {
  it.each([[31], [65], [128], [56.5], [Number.NaN], ['56'], [null]])('rejects ipv6Subnet %s with a ConfigError naming the option', (subnet) => {
    expect(() => keys.ip({ ipv6Subnet: subnet as number })).toThrow(ConfigError);
    expect(() => keys.ip({ ipv6Subnet: subnet as number })).toThrow(/ipv6Subnet must be an integer from 32 to 64; got/);
  });

  it('accepts the bounds 32 and 64', () => {
    expect(() => keys.ip({ ipv6Subnet: 32 })).not.toThrow();
    expect(() => keys.ip({ ipv6Subnet: 64 })).not.toThrow();
  });

  it('rejects unknown options and a logger without warn()', () => {
    expect(() => keys.ip({ subnet: 56 } as never)).toThrow(/keys.ip\(\) has no option "subnet"; allowed options: ipv6Subnet, logger/);
    expect(() => keys.ip({ logger: {} as never })).toThrow(/option logger must have a warn\(message\) method/);
  });
});
