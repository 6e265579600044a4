/**
 * The HTTP cases: one framework, one limiter implementation (or none), its store and client, the
 * path (allow or block) and the key set. Shared by the driver and by the server process, which is
 * given only the case id.
 *
 * Every request carries an `x-api-key` header and every limiter is keyed by it, so one hot key and
 * 10 000 keys differ only by the header's values (bare servers get the same requests).
 */
export type Framework = 'express' | 'koa';
export type Impl = 'bare' | 'ratelock-memory' | 'ratelock-redis' | 'naive' | 'erl' | 'rlf' | 'koa-ratelimit';
export type Path = 'allow' | 'block';

export interface HttpCase {
  /** e.g. `koa-ratelock-redis-ap-allow-10k`; selected by BENCH_CASES. */
  id: string;
  framework: Framework;
  impl: Impl;
  path: Path;
  /** Distinct `x-api-key` values the load cycles through: 1 (one hot key) or 10 000. */
  keyCount: number;
  /** The ioredis client gets `enableAutoPipelining: true` (else it is at its defaults). */
  autoPipelining: boolean;
  usesRedis: boolean;
  /** Part of `npm run bench:quick`. */
  quick: boolean;
  label: string;
}

export const HEADER = 'x-api-key';
export const MANY_KEYS = 10_000;

/**
 * allow: a limit never reached, in a 1 s window, so logs are trimmed and expire during the run as in
 * a long-running service. block: limit 1 per hour; the driver spends each key's one request before
 * measuring, so every measured request is a 429.
 */
export const LIMITS: Record<Path, { limit: number; windowMs: number }> = {
  allow: { limit: 1_000_000_000, windowMs: 1_000 },
  block: { limit: 1, windowMs: 3_600_000 },
};

const FRAMEWORK_LABEL: Record<Framework, string> = { express: 'Express 5', koa: 'Koa 3' };
const IMPL_LABEL: Record<Impl, string> = {
  bare: 'bare',
  'ratelock-memory': 'ratelock MemoryStore',
  'ratelock-redis': 'ratelock RedisStore',
  naive: 'hand-written 1 EVALSHA/req',
  erl: 'express-rate-limit + rate-limit-redis',
  rlf: 'rate-limiter-flexible Redis',
  'koa-ratelimit': 'koa-ratelimit (redis)',
};

interface Variant {
  impl: Impl;
  path: Path;
  keyCount: number;
  autoPipelining?: boolean;
  quick?: boolean;
}

function variants(framework: Framework): Variant[] {
  const hot = 1;
  const many = MANY_KEYS;
  const peers: Impl[] = framework === 'express' ? ['erl', 'rlf'] : ['koa-ratelimit'];
  return [
    { impl: 'bare', path: 'allow', keyCount: hot, quick: true },
    { impl: 'ratelock-memory', path: 'allow', keyCount: hot, quick: true },
    { impl: 'ratelock-memory', path: 'allow', keyCount: many },
    { impl: 'ratelock-memory', path: 'block', keyCount: hot },
    { impl: 'ratelock-redis', path: 'allow', keyCount: hot, quick: true },
    { impl: 'ratelock-redis', path: 'allow', keyCount: many, quick: framework === 'koa' },
    { impl: 'ratelock-redis', path: 'block', keyCount: hot, quick: true },
    { impl: 'ratelock-redis', path: 'block', keyCount: many },
    { impl: 'ratelock-redis', path: 'allow', keyCount: hot, autoPipelining: true },
    { impl: 'ratelock-redis', path: 'allow', keyCount: many, autoPipelining: true },
    { impl: 'naive', path: 'allow', keyCount: hot, quick: true },
    { impl: 'naive', path: 'allow', keyCount: many },
    { impl: 'naive', path: 'allow', keyCount: hot, autoPipelining: true },
    { impl: 'naive', path: 'allow', keyCount: many, autoPipelining: true },
    ...peers.flatMap((impl): Variant[] => [
      { impl, path: 'allow', keyCount: hot, quick: true },
      { impl, path: 'allow', keyCount: many },
    ]),
  ];
}

function makeCase(framework: Framework, v: Variant): HttpCase {
  const ap = v.autoPipelining ?? false;
  const keys = v.keyCount === 1 ? 'hot' : `${v.keyCount / 1000}k`;
  const id = v.impl === 'bare' ? `${framework}-bare` : `${framework}-${v.impl}${ap ? '-ap' : ''}-${v.path}-${keys}`;
  const detail = [v.path === 'allow' ? 'allow' : 'block (429)', v.keyCount === 1 ? '1 key' : `${v.keyCount.toLocaleString('en-US')} keys`];
  if (ap) detail.push('auto-pipelining');
  const label = v.impl === 'bare' ? `bare ${FRAMEWORK_LABEL[framework]}` : `${IMPL_LABEL[v.impl]}, ${detail.join(', ')}`;
  const usesRedis = v.impl !== 'bare' && v.impl !== 'ratelock-memory';
  return { id, framework, impl: v.impl, path: v.path, keyCount: v.keyCount, autoPipelining: ap, usesRedis, quick: v.quick ?? false, label };
}

export const ALL_CASES: readonly HttpCase[] = (['express', 'koa'] as const).flatMap((fw) => variants(fw).map((v) => makeCase(fw, v)));

export function caseById(id: string): HttpCase {
  const found = ALL_CASES.find((c) => c.id === id);
  if (!found) throw new Error(`unknown HTTP case '${id}'; known: ${ALL_CASES.map((c) => c.id).join(', ')}`);
  return found;
}

export function bareCaseOf(c: HttpCase): HttpCase {
  return caseById(`${c.framework}-bare`);
}

/**
 * BENCH_CASES: comma-separated ids or globs (`koa-*`, `*-block-*`); the bare case of every selected
 * framework is always added, since every ratio is taken against it in the same round.
 */
export function selectCases(filter: string | undefined, quick: boolean): HttpCase[] {
  let selected = ALL_CASES.filter((c) => (quick ? c.quick : true));
  if (filter) {
    const patterns = filter.split(',').map((p) => p.trim()).filter(Boolean).map(globToRegExp);
    selected = ALL_CASES.filter((c) => patterns.some((re) => re.test(c.id)));
    if (selected.length === 0) throw new Error(`BENCH_CASES='${filter}' matches no case; known: ${ALL_CASES.map((c) => c.id).join(', ')}`);
  }
  const bare = new Set(selected.map((c) => bareCaseOf(c).id));
  return ALL_CASES.filter((c) => bare.has(c.id) || selected.includes(c));
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}
