/**
 * The route table without HTTP: pattern parsing and matching, and the startup errors of a bad
 * table (each names the rule index and field).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { RouteMatcher, routingPaths } from '../../src/adapters/http/route-matcher.js';
import { parseRoute, splitPath } from '../../src/adapters/http/route-pattern.js';
import { compileRouteTable, ruleNameFromRoute, type RouteAccess } from '../../src/adapters/http/route-table.js';
import { MemoryStore } from '../../src/stores/memory.js';

/** These tests compile tables and read their rules; no request is matched. */
const pathOnly: RouteAccess<{ method: string; path: string }> = { method: (req) => req.method, path: (req) => req.path };

const store = new MemoryStore({ sweepIntervalMs: 0 });

function matcherOf(routes: readonly string[]): (method: string, path: string) => string[] {
  const rules = routes.map((route) => ({ route, pattern: parseRoute(route, 'route') }));
  const matcher = new RouteMatcher(rules);
  return (method, path) => matcher.match(method, path).map((rule) => rule.route);
}

function tableError(options: Record<string, unknown>): string {
  try {
    compileRouteTable({ store, ...options } as never, pathOnly);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('route patterns', () => {
  it('splits paths into lower-case segments, ignoring empty ones', () => {
    expect(splitPath('/')).toEqual([]);
    expect(splitPath('//Users//42/')).toEqual(['users', '42']);
  });

  it('parses method, literal and :param segments and a trailing *', () => {
    expect(parseRoute('post /Login', 'r')).toEqual({ method: 'POST', segments: ['login'], prefix: false });
    expect(parseRoute('/users/:id/posts', 'r')).toEqual({ method: undefined, segments: ['users', null, 'posts'], prefix: false });
    expect(parseRoute('GET /api/*', 'r')).toEqual({ method: 'GET', segments: ['api'], prefix: true });
    expect(parseRoute('*', 'r')).toEqual({ method: undefined, segments: [], prefix: true });
  });

  it('matches exact paths case-insensitively, with any trailing or doubled slash', () => {
    const match = matcherOf(['POST /login']);
    expect(match('POST', '/login')).toEqual(['POST /login']);
    expect(match('POST', '/LOGIN/')).toEqual(['POST /login']);
    expect(match('POST', '//login')).toEqual(['POST /login']);
    expect(match('GET', '/login')).toEqual([]);
    expect(match('POST', '/login/x')).toEqual([]);
    expect(match('POST', '/logins')).toEqual([]);
  });

  it('applies a GET rule to HEAD as well, and a rule without method to every method', () => {
    const match = matcherOf(['GET /search', '/any']);
    expect(match('HEAD', '/search')).toEqual(['GET /search']);
    expect(match('POST', '/search')).toEqual([]);
    for (const method of ['GET', 'POST', 'DELETE', 'OPTIONS']) expect(match(method, '/any')).toEqual(['/any']);
  });

  it('matches a :param segment to exactly one segment', () => {
    const match = matcherOf(['/users/:id', '/:tenant/report']);
    expect(match('GET', '/users/42')).toEqual(['/users/:id']);
    expect(match('GET', '/users')).toEqual([]);
    expect(match('GET', '/users/42/x')).toEqual([]);
    expect(match('GET', '/acme/report')).toEqual(['/:tenant/report']);
    expect(match('GET', '/users/report')).toEqual(['/users/:id', '/:tenant/report']);
  });

  it('matches /prefix/* on the prefix itself and everything below it, not on siblings', () => {
    const match = matcherOf(['/api/*']);
    for (const path of ['/api', '/api/', '/api/x', '/api/x/y/z']) expect(match('GET', path), path).toEqual(['/api/*']);
    for (const path of ['/apix', '/', '/v1/api']) expect(match('GET', path), path).toEqual([]);
  });

  it('matches * and /* on every path, root included', () => {
    const match = matcherOf(['*', '/*']);
    expect(match('GET', '/')).toEqual(['*', '/*']);
    expect(match('PUT', '/a/b')).toEqual(['*', '/*']);
  });

  it('returns every matching rule in table order', () => {
    const match = matcherOf(['/*', 'POST /api/items', '/api/*', '/:x/items', 'GET /api/items']);
    expect(match('POST', '/api/items')).toEqual(['/*', 'POST /api/items', '/api/*', '/:x/items']);
    expect(match('GET', '/other/items')).toEqual(['/*', '/:x/items']);
  });
});

describe('request-targets routers read otherwise', () => {
  // A review found Fastify running the /login handler, uncounted, for each of these: its router
  // decodes the path, cuts it at '#', and routes an absolute-form target by its path.
  it.each(['/%6Cogin', '/logi%6E', '/%6c%6F%67%69%6e', '/login#x', '/login?x#y', 'http://h/login', 'HTTPS://h:8080/login?x', '/login;jsessionid=1', '/%6Cogin;x'])(
    'matches %s as /login',
    (target) => {
      expect(matcherOf(['POST /login'])('POST', target)).toEqual(['POST /login']);
    },
  );

  it('keeps an encoded slash within its segment, and a malformed escape as it is', () => {
    const match = matcherOf(['/a/:x', '/a/b/c', '/a/%zz']);
    expect(match('GET', '/a/b%2Fc')).toEqual(['/a/:x']);
    expect(match('GET', '/a/%zz')).toEqual(['/a/:x', '/a/%zz']);
  });

  // Found by a review: Fastify runs `/u/:id/edit` for `/u//edit` (an empty id) and `/p/:id` for `/p/`.
  it('matches a :param segment to an empty one too (/u//edit, /p/), as Fastify routes them', () => {
    const match = matcherOf(['GET /u/:id/edit', 'GET /p/:id', 'POST /v/:a/:b', 'GET /login']);
    expect(match('GET', '/u//edit')).toEqual(['GET /u/:id/edit']);
    expect(match('GET', '/p/')).toEqual(['GET /p/:id']);
    expect(match('POST', '/v//')).toEqual(['POST /v/:a/:b']);
    expect(match('POST', '/v/1/')).toEqual(['POST /v/:a/:b']);
    expect(match('GET', '/login/')).toEqual(['GET /login']); // empty segments still ignored for literals
    expect(match('GET', '//login')).toEqual(['GET /login']);
    expect(match('GET', '/u/edit')).toEqual([]);
  });

  it('reads an absolute-form target without path as /', () => {
    expect(matcherOf(['GET /'])('GET', 'http://h')).toEqual(['GET /']);
    expect(matcherOf(['GET /'])('GET', 'http://h?x=1')).toEqual(['GET /']);
  });

  it('reads a plain path as itself, without copies', () => {
    expect(routingPaths('/login')).toBeUndefined();
    expect(routingPaths('/login?x=1')).toEqual(['/login']);
    expect(routingPaths('/u//edit')).toEqual(['/u//edit']);
  });
});

describe('route table errors', () => {
  const valid = { route: 'GET /search', limit: 10, window: '1s' };

  it.each([
    [{ routes: [valid, { route: 'POST /login', limit: 'x', window: '1m' }] }, 'routes[1].limit must be an integer from 1 to 1000000000; got "x"'],
    [{ routes: [{ route: '/a', limit: 1 }] }, 'routes[0].limit and routes[0].window are both required'],
    [{ routes: [{ route: '/a', limit: 1, window: 'soon' }] }, 'routes[0].window must be a whole number of milliseconds'],
    [{ routes: [{ route: '/a', limits: [{ limit: 1, window: '1s' }, { limit: 0, window: '1h' }] }] }, 'routes[0].limits[1].limit must be an integer'],
    [{ routes: [valid, { ...valid, limitt: 5 }] }, 'routes[1] has no field "limitt"; allowed fields: route, limit, window, limits, key, cost, name'],
    [{ routes: [{ ...valid, route: 'GRAB /x' }] }, 'routes[0].route has an unknown HTTP method "GRAB"'],
    [{ routes: [{ ...valid, route: 'search' }] }, "routes[0].route path must start with '/'"],
    [{ routes: [{ ...valid, route: '/api*' }] }, "routes[0].route may use '*' only as its whole last segment"],
    [{ routes: [{ ...valid, route: '/a/*/b' }] }, "routes[0].route may use '*' only as its whole last segment"],
    [{ routes: [{ ...valid, route: 42 }] }, "routes[0].route must be a string '[METHOD ]PATH'"],
    [{ routes: [valid, { ...valid, key: 'user' }] }, "routes[1].key is 'user' but the table has no user option"],
    [{ routes: [{ ...valid, key: 'cookie:sid' }] }, "routes[0].key must be 'ip', 'ip/<32-64>', 'header:<name>', 'user', 'query:<name>' or a key extractor function; got \"cookie:sid\""],
    [{ routes: [{ ...valid, key: ['ip', 'ip/16'] }] }, "routes[0].key[1] 'ip/<bits>' needs IPv6 prefix bits from 32 to 64"],
    [{ routes: [{ ...valid, key: 'header:bad name' }] }, "routes[0].key 'header:<name>' needs an HTTP header name"],
    [{ routes: [{ ...valid, key: [] }] }, 'routes[0].key must be'],
    [{ routes: [{ ...valid, cost: -5 }] }, 'routes[0].cost must be an integer from 1 to 10000; got -5'],
    [{ routes: [{ ...valid, cost: 10_001 }] }, 'routes[0].cost must be an integer from 1 to 10000; got 10001'],
    [{ routes: [{ ...valid, name: 'has space' }] }, 'routes[0].name must be 1 to 32 characters'],
    [{ routes: [{ ...valid, name: 'a' }, { ...valid, name: 'a' }] }, 'routes[1].name must differ from the name of routes[0]'],
    [{ routes: [valid, { ...valid, key: 'header:x-api-key' }] }, 'routes[1].name must differ from the name of routes[0]: both are "GET_/search" (a rule without a name is named after its route); give one of them a name'],
    [{ routes: [valid, { ...valid, route: 'get /Search/' }] }, 'routes[1].name must differ from the name of routes[0]: both are "GET_/search"'],
    [{ routes: [{ ...valid, route: '/a//b' }, { ...valid, route: '/A/b' }] }, 'routes[1].name must differ from the name of routes[0]: both are "/a/b"'],
    [{ routes: [{ ...valid, route: 'GET /u/:id' }, { ...valid, route: 'get /U/:name/' }] }, 'routes[1].route matches the same requests as routes[0].route ("GET /u/:"), so both would charge them'],
    [{ routes: [{ ...valid, route: '/files/:a/*' }, { ...valid, route: '/files/:b/*' }] }, 'routes[1].route matches the same requests as routes[0].route ("* /files/:/*")'],
    [{ routes: [{ ...valid, route: 'GET /q?x=1' }] }, "routes[0].route path is matched without its query string or fragment, so a '?' or '#' in it never matches"],
    [{ routes: [{ ...valid, route: '/login#top' }] }, "routes[0].route path is matched without its query string or fragment"],
    [{ routes: [{ ...valid, name: 'GET_/search' }] }, 'routes[0].name must be 1 to 32 characters from letters, digits and _ . -; got "GET_/search"'],
    [{ routes: [valid], prefix: 'p'.repeat(60) }, 'routes[0].route (an unnamed rule is named after its route) makes the key prefix'],
    [{ routes: [valid, 'GET /x'] }, 'routes[1] must be an object like'],
    [{ routes: [] }, 'routes must be a non-empty array'],
    [{ routes: [valid], limit: 5 }, 'rateLimitRoutes() has no option "limit": limits belong to each rule of routes'],
    [{ routes: [valid], limitt: 5 }, 'rateLimitRoutes() has no option "limitt"; allowed options:'],
    [{ routes: [valid], user: 'id' }, 'user must be a function'],
    [{ routes: [valid], headers: 'draft-9' }, "headers must be one of 'draft-10', 'draft-8', 'draft-7', 'draft-6', 'legacy' or false; got \"draft-9\""],
  ])('%j → %s', (options, message) => {
    expect(tableError(options)).toContain(message);
  });

  it('loads a table that went through JSON', () => {
    const routes = [
      { route: 'POST /login', limit: 5, window: '15m', key: 'ip', name: 'login' },
      { route: 'GET /search', limits: [{ limit: 10, window: '1s' }, { limit: 500, window: '1h', name: 'hourly' }], key: 'user' },
      { route: '/api/*', limit: 1000, window: 3_600_000, key: ['header:x-api-key', 'query:key', 'ip/64'], cost: 2 },
    ];
    const table = compileRouteTable({ store, user: () => 'u', routes: JSON.parse(JSON.stringify(routes)) } as never, pathOnly);
    expect(table.rules.map((rule) => [rule.prefix, rule.policies?.map((policy) => policy.name)])).toEqual([
      ['rl:login:', ['login/5-in-15m']],
      ['rl:GET_/search:', ['GET_/search/10-in-1s', 'GET_/search/hourly']],
      ['rl:/api/_:', ['/api/_/1000-in-1h']],
    ]);
  });
});

describe('rule names', () => {
  it('names a rule without a name after its route, with other characters as _', () => {
    expect(ruleNameFromRoute('POST /login')).toBe('POST_/login');
    expect(ruleNameFromRoute('  GET   /users/:id ')).toBe('GET_/users/:id');
    expect(ruleNameFromRoute('/api/*')).toBe('/api/_');
    expect(ruleNameFromRoute('*')).toBe('_');
  });

  it('shortens long routes to 32 characters, keeping them apart by a digest of the whole route', () => {
    const a = ruleNameFromRoute('GET /organisations/:org/projects/:project/builds');
    const b = ruleNameFromRoute('GET /organisations/:org/projects/:project/deploys');
    expect(a).toHaveLength(32);
    expect(b).toHaveLength(32);
    expect(a).toMatch(/^GET_\/organisations\/:org-[A-Za-z0-9_-]{8}$/);
    expect(a).not.toBe(b);
    expect(ruleNameFromRoute('GET /organisations/:org/projects/:project/builds')).toBe(a);
  });

  it('does not depend on the rule index: the same rule gets the same keys in any table and position', () => {
    const login = { route: 'POST /login', limit: 5, window: '15m' };
    const first = compileRouteTable({ store, routes: [login] } as never, pathOnly);
    const second = compileRouteTable({ store, routes: [{ route: 'GET /search', limit: 10, window: '1s' }, login] } as never, pathOnly);
    expect(second.rules[1]!.prefix).toBe(first.rules[0]!.prefix);
    expect(second.rules[1]!.policies).toEqual(first.rules[0]!.policies);
    expect(first.rules[0]).toMatchObject({ name: 'POST_/login', prefix: 'rl:POST_/login:' });
    expect(second.rules[0]!.prefix).not.toBe(first.rules[0]!.prefix);
  });
});
