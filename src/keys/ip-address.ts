/**
 * Client address → rate-limit key, without dependencies and without a regex per request.
 *
 * - IPv4 is keyed by the full address: `1.2.3.4`.
 * - IPv6 is keyed by its /`subnet` prefix (`2001:db8:0:100::/56`): a client is usually delegated a
 *   /56 or /64, so keying single addresses would let it rotate through 2^64 of them.
 * - IPv4-mapped IPv6 is recognised by its bits, in both notations (`::ffff:1.2.3.4` and
 *   `::ffff:102:304`), and keyed as the IPv4 address; `2001:db8::1.2.3.4` is not mapped and stays IPv6.
 * - A port (`1.2.3.4:5678`, `[::1]:80`) and a zone id (`fe80::1%eth0`) are never part of the key,
 *   so a client cannot get a fresh bucket by changing its source port.
 * - Anything else is returned unchanged: an odd address still gets its own bucket (hashed later by
 *   the store keys), never a shared one.
 */

const COLON = 0x3a;
const DOT = 0x2e;
const OPEN_BRACKET = 0x5b;

/** Scratch space for the 8 groups of the address being parsed (parsing is synchronous). */
const groups: number[] = [0, 0, 0, 0, 0, 0, 0, 0];

/**
 * The key part for `address`: the IPv4 address, the IPv6 /`ipv6Subnet` prefix, or `address`
 * itself when it is not an IP address. `ipv6Subnet` must already be validated (32–64).
 *
 * @example ipKeyPart('::ffff:102:304', 56) // '1.2.3.4'
 * @example ipKeyPart('2001:db8:0:1ff:a:b:c:d', 56) // '2001:db8:0:100::/56'
 */
export function ipKeyPart(address: string, ipv6Subnet: number): string {
  const host = hostOf(address);
  const ipv4 = parseIPv4(host, 0, host.length);
  if (ipv4 >= 0) return formatIPv4(ipv4);
  if (!parseIPv6(host)) return address;
  if (isIPv4Mapped()) return formatIPv4(groups[6]! * 0x10000 + groups[7]!);
  maskGroups(ipv6Subnet);
  return `${formatIPv6()}/${ipv6Subnet}`;
}

/** Strips brackets, a port and a zone id: `[fe80::1%eth0]:80` → `fe80::1`, `1.2.3.4:5678` → `1.2.3.4`. */
function hostOf(address: string): string {
  let host = address;
  if (host.charCodeAt(0) === OPEN_BRACKET) {
    const close = host.indexOf(']');
    if (close > 0) host = host.slice(1, close);
  } else {
    const firstColon = host.indexOf(':');
    // Exactly one colon: `host:port` (an IPv6 address has at least two).
    if (firstColon > 0 && host.indexOf(':', firstColon + 1) < 0) host = host.slice(0, firstColon);
  }
  const zone = host.indexOf('%');
  return zone > 0 ? host.slice(0, zone) : host;
}

/** Parses a dotted quad in `text[start, end)`; returns it as an unsigned 32-bit number, or -1. */
function parseIPv4(text: string, start: number, end: number): number {
  let value = 0;
  let octets = 0;
  let i = start;
  while (octets < 4) {
    let octet = 0;
    let digits = 0;
    while (i < end) {
      const c = text.charCodeAt(i) - 0x30;
      if (c < 0 || c > 9) break;
      octet = octet * 10 + c;
      if (++digits > 3) return -1;
      i++;
    }
    if (digits === 0 || octet > 255) return -1;
    value = value * 256 + octet;
    octets++;
    if (octets < 4) {
      if (i >= end || text.charCodeAt(i) !== DOT) return -1;
      i++;
    }
  }
  return i === end ? value : -1;
}

function formatIPv4(value: number): string {
  return `${Math.floor(value / 0x1000000)}.${Math.floor(value / 0x10000) % 256}.${Math.floor(value / 0x100) % 256}.${value % 256}`;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Parses an IPv6 address (RFC 4291 text forms, incl. a trailing dotted quad) into `groups`. */
function parseIPv6(text: string): boolean {
  const end = text.length;
  let count = 0;
  let gap = -1; // index in `groups` where '::' stands
  let i = 0;
  if (end < 2) return false;
  if (text.charCodeAt(0) === COLON) {
    if (text.charCodeAt(1) !== COLON) return false;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    if (count === 8) return false;
    let value = 0;
    let digits = 0;
    let j = i;
    while (j < end) {
      const h = hexValue(text.charCodeAt(j));
      if (h < 0) break;
      if (++digits > 4) return false;
      value = value * 16 + h;
      j++;
    }
    if (j < end && text.charCodeAt(j) === DOT) {
      // A trailing dotted quad fills the last two groups.
      const ipv4 = count <= 6 ? parseIPv4(text, i, end) : -1;
      if (ipv4 < 0) return false;
      groups[count++] = Math.floor(ipv4 / 0x10000);
      groups[count++] = ipv4 % 0x10000;
      break;
    }
    if (digits === 0) return false;
    groups[count++] = value;
    if (j === end) break;
    if (text.charCodeAt(j) !== COLON) return false;
    j++;
    if (j < end && text.charCodeAt(j) === COLON) {
      if (gap >= 0) return false;
      gap = count;
      j++;
    } else if (j === end) {
      return false; // a single trailing colon
    }
    i = j;
  }
  if (gap < 0) return count === 8;
  if (count === 8) return false; // '::' must stand for at least one group
  const tail = count - gap;
  for (let k = tail - 1; k >= 0; k--) groups[8 - tail + k] = groups[gap + k]!;
  for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  return true;
}

/** `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2), recognised from its bits whatever the notation. */
function isIPv4Mapped(): boolean {
  return groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff;
}

/** Keeps the first `bits` bits of `groups`, zeroing the rest. */
function maskGroups(bits: number): void {
  for (let k = 0; k < 8; k++) {
    const keep = Math.min(16, Math.max(0, bits - k * 16));
    groups[k] = keep === 16 ? groups[k]! : keep === 0 ? 0 : groups[k]! & ((0xffff << (16 - keep)) & 0xffff);
  }
}

/** RFC 5952 text: lower-case hex, no leading zeros, the longest run (≥ 2) of zero groups as '::'. */
function formatIPv6(): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let k = 0; k < 8; ) {
    if (groups[k] !== 0) {
      k++;
      continue;
    }
    let run = k;
    while (run < 8 && groups[run] === 0) run++;
    if (run - k > bestLength) {
      bestStart = k;
      bestLength = run - k;
    }
    k = run;
  }
  let text = '';
  for (let k = 0; k < 8; k++) {
    if (k === bestStart) {
      text += '::';
      k += bestLength - 1;
      continue;
    }
    if (text.length > 0 && !text.endsWith(':')) text += ':';
    text += groups[k]!.toString(16);
  }
  return text;
}
