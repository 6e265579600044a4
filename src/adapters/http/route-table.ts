/**
 * `rateLimitRoutes`: a table of rules compiled ONCE at startup (validated, keys and limits
 * resolved, patterns bucketed), and the per-request resolver that turns the rules matching a
 * request into ONE store call.
 *
 * - Every matching rule applies; each is one LimitPart with its own id (from its key spec) and its
 *   own prefix `${prefix}${rule name or index}:`, so two rules never share a log. All their limits
 *   are decided together, all or nothing.
 * - Policy names are `<rule name or index>/<limit name>` (e.g. `login/15m`), so headers and
 *   `decision.policy` say which rule decided. Give rules a `name` to keep their keys stable when
 *   the table is reordered.
 * - One cost per request (the store records one cost per call): the largest `cost` among the
 *   matching rules, else the table's `cost`, else 1.
 * - Unmatched requests are untouched: no store call, no headers.
 */
import { ConfigError } from '../../core/errors.js';
import { describe } from '../../core/duration.js';
import { MAX_PREFIX_LENGTH, validatePrefix } from '../../core/keyspace.js';
import { policiesFor, resolveLimits, staticPolicies, type LimitDefinition, type ResolvedLimit } from '../../core/limits.js';
import type { LimitPart } from '../../core/decide.js';
import type { Policy } from '../../core/decision.js';
import type { KeyResolver } from '../../keys.js';
import { precomputeHeaderStrings } from './headers.js';
import { RouteKeyCompiler, type KeySpecContext, type RouteKeySpec } from './key-spec.js';
import { costOf, isThenable, type LimitRequest, type LimitRequestResolver } from './limit-request.js';
import {
  definedOptions,
  HTTP_LIMITER_OPTION_NAMES,
  resolveCostOption,
  resolveHttpLimiterOptions,
  type Awaitable,
  type HttpLimiterConfig,
  type HttpLimiterOptions,
} from './options.js';
import { RouteMatcher } from './route-matcher.js';
import { parseRoute, type RoutePattern } from './route-pattern.js';

/** One rule of the table; every field is JSON-representable except optional functions. */
export interface RouteRule<Req> {
  /** `'[METHOD ]PATH'`: `'POST /login'`, `'/users/:id'`, `'/api/*'`. */
  route: string;
  /** Quota per `window` (or a function of the request). Use with `window`, or use `limits`. */
  limit?: number | ((req: Req) => Awaitable<number>);
  window?: LimitDefinition['window'];
  limits?: readonly (Omit<LimitDefinition, 'limit'> & { limit: number | ((req: Req) => Awaitable<number>) })[];
  /** Key spec: `'ip'`, `'ip/<bits>'`, `'header:<name>'`, `'user'`, `'query:<name>'`, a function, or a list. @default the table's `key`, else 'ip' */
  key?: RouteKeySpec<Req>;
  /** Cost of a request matching this rule. @default the table's `cost`, else 1 */
  cost?: number | ((req: Req) => Awaitable<number>);
  /** Names the rule in keys and policy names: 1–32 of letters, digits, `_ . -`. @default its index */
  name?: string;
}

/** `rateLimitRoutes()` options: the rules, plus every rateLimit option, applied to all rules. */
export interface RateLimitRoutesOptionsBase<Req, OnLimited, RefundPredicate> extends HttpLimiterOptions<Req, OnLimited, RefundPredicate> {
  routes: readonly RouteRule<Req>[];
  /** What the `'user'` key spec means, e.g. `(req) => req.user?.id`. Required if a rule uses `'user'`. */
  user?: KeySpecContext<Req>['user'];
  /** Key spec of rules without one. @default 'ip' */
  key?: RouteKeySpec<Req>;
}

/** One rule, compiled. */
export interface CompiledRule<Req> {
  readonly index: number;
  readonly pattern: RoutePattern;
  readonly prefix: string;
  readonly limits: readonly ResolvedLimit[];
  readonly policies: readonly Policy[] | undefined;
  readonly limitOption: string;
  readonly key: KeyResolver<Req>;
  readonly cost: number | ((req: Req) => Awaitable<number>) | undefined;
  readonly costOption: string;
}

export interface RouteTable<Req, OnLimited, RefundPredicate> {
  readonly config: HttpLimiterConfig<Req, OnLimited, RefundPredicate>;
  readonly rules: readonly CompiledRule<Req>[];
  readonly resolve: LimitRequestResolver<Req>;
}

/** Option and field names as Records over the interfaces' keys, so the compiler keeps them complete. */
const TABLE_OPTIONS: Record<Exclude<keyof RateLimitRoutesOptionsBase<unknown, unknown, unknown>, keyof HttpLimiterOptions<unknown, unknown, unknown>>, true> = {
  routes: true,
  user: true,
  key: true,
};
const TABLE_OPTION_NAMES: readonly string[] = [...HTTP_LIMITER_OPTION_NAMES, ...Object.keys(TABLE_OPTIONS)];
const RULE_FIELD_SET: Record<keyof RouteRule<unknown>, true> = { route: true, limit: true, window: true, limits: true, key: true, cost: true, name: true };
const RULE_FIELDS: readonly string[] = Object.keys(RULE_FIELD_SET);
const RULE_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,32}$/;

/** The request as the table reads it: Express `req` and Koa `ctx` both have these. */
interface RoutedRequest {
  readonly method: string;
  readonly path: string;
}

/** Validates the table and every option, and compiles the rules. Throws a ConfigError naming the rule index and field. */
export function compileRouteTable<Req extends RoutedRequest, OnLimited, RefundPredicate>(
  options: RateLimitRoutesOptionsBase<Req, OnLimited, RefundPredicate>,
  owner = 'rateLimitRoutes()',
): RouteTable<Req, OnLimited, RefundPredicate> {
  for (const misplaced of ['limit', 'window', 'limits'] as const) {
    if ((options as unknown as Record<string, unknown> | null)?.[misplaced] !== undefined) {
      throw new ConfigError(`${owner} has no option "${misplaced}": limits belong to each rule of routes, e.g. routes: [{ route: 'GET /search', limit: 10, window: '1s' }]`);
    }
  }
  const defined = definedOptions(options, TABLE_OPTION_NAMES, owner);
  const config = resolveHttpLimiterOptions<Req, OnLimited, RefundPredicate>(defined);
  if (defined.user !== undefined && typeof defined.user !== 'function') {
    throw new ConfigError(`user must be a function (req) => user id, used by the 'user' key spec; got ${describe(defined.user)}`);
  }
  const keyCompiler = new RouteKeyCompiler<Req>({ user: defined.user as KeySpecContext<Req>['user'], logger: config.logger });
  const defaultKey = defined.key ?? 'ip';
  const routes = defined.routes;
  if (!Array.isArray(routes) || routes.length === 0) {
    throw new ConfigError(`routes must be a non-empty array of rules like { route: 'POST /login', limit: 5, window: '15m', key: 'ip' }; got ${describe(routes)}`);
  }
  const labels = new Map<string, number>();
  const rules = routes.map((rule: unknown, index) => {
    const compiled = compileRule(rule, index, config.prefix, defaultKey, keyCompiler);
    const label = compiled.prefix.slice(config.prefix.length, -1);
    const previous = labels.get(label);
    if (previous !== undefined) {
      throw new ConfigError(
        `routes[${index}].name must differ from the name of routes[${previous}] (an unnamed rule is named by its index); both are ${describe(label)}`,
      );
    }
    labels.set(label, index);
    return compiled;
  });
  const matcher = new RouteMatcher(rules);
  const resolve: LimitRequestResolver<Req> = (req) => {
    const matched = matcher.match(req.method, req.path);
    if (matched.length === 0) return undefined;
    if (config.skip === undefined) return buildRequest(matched, req, config.cost);
    const skipped = config.skip(req);
    if (isThenable(skipped)) return Promise.resolve(skipped).then((value) => (value ? undefined : buildRequest(matched, req, config.cost)));
    return skipped ? undefined : buildRequest(matched, req, config.cost);
  };
  return { config, rules, resolve };
}

function compileRule<Req>(
  rule: unknown,
  index: number,
  tablePrefix: string,
  defaultKey: unknown,
  keyCompiler: RouteKeyCompiler<Req>,
): CompiledRule<Req> {
  const path = `routes[${index}]`;
  if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) {
    throw new ConfigError(`${path} must be an object like { route: 'GET /search', limit: 10, window: '1s' }; got ${describe(rule)}`);
  }
  const fields = rule as Record<string, unknown>;
  for (const [field, value] of Object.entries(fields)) {
    if (value !== undefined && !RULE_FIELDS.includes(field)) {
      throw new ConfigError(`${path} has no field "${field}"; allowed fields: ${RULE_FIELDS.join(', ')}`);
    }
  }
  const pattern = parseRoute(fields.route, `${path}.route`);
  const label = fields.name === undefined ? String(index) : validateRuleName(fields.name, `${path}.name`);
  const prefix = `${tablePrefix}${label}:`;
  if (prefix.length > MAX_PREFIX_LENGTH) {
    throw new ConfigError(`${path}.name makes the key prefix ${describe(prefix)} longer than ${MAX_PREFIX_LENGTH} characters; shorten the name or the prefix option`);
  }
  validatePrefix(prefix, `${path}.name`);
  // Policy names carry the rule's label, so headers and decisions say which rule decided.
  const limits = resolveLimits(fields, path, { allowDynamic: true }).map((limit) => ({ ...limit, name: `${label}/${limit.name}` }));
  const policies = staticPolicies(limits);
  if (policies !== undefined) precomputeHeaderStrings(policies);
  return {
    index,
    pattern,
    prefix,
    limits,
    policies,
    limitOption: `${path}.${fields.limits === undefined ? 'limit' : 'limits'}`,
    key: keyCompiler.compile(fields.key ?? defaultKey, fields.key === undefined ? 'key' : `${path}.key`),
    cost: resolveCostOption<Req>(fields.cost, `${path}.cost`),
    costOption: `${path}.cost`,
  };
}

function validateRuleName(value: unknown, option: string): string {
  if (typeof value !== 'string' || !RULE_NAME_PATTERN.test(value)) {
    throw new ConfigError(`${option} must be 1 to 32 characters from letters, digits and _ . -; got ${describe(value)}`);
  }
  return value;
}

/** The parts and cost of a request matched by `rules`, synchronous unless a callback is async. */
function buildRequest<Req>(
  rules: readonly CompiledRule<Req>[],
  req: Req,
  tableCost: number | ((req: Req) => Awaitable<number>),
): Awaitable<LimitRequest> {
  const count = rules.length;
  const ids: Awaitable<string>[] = new Array(count);
  const policyLists: Awaitable<readonly Policy[]>[] = new Array(count);
  let pending = false;
  for (let i = 0; i < count; i++) {
    const rule = rules[i]!;
    // Rules with the same key spec share a resolver: compute each distinct key once.
    let id: Awaitable<string> | undefined;
    for (let j = 0; j < i && id === undefined; j++) if (rules[j]!.key === rule.key) id = ids[j];
    ids[i] = id ??= rule.key(req);
    const policies = rule.policies ?? policiesFor(rule.limits, req, rule.limitOption);
    policyLists[i] = policies;
    pending ||= isThenable(id) || isThenable(policies);
  }
  const costs = ruleCosts(rules, req, tableCost);
  if (pending || costs.some(isThenable)) {
    return Promise.all([Promise.all(ids), Promise.all(policyLists), Promise.all(costs)]).then(([settledIds, settledPolicies, settledCosts]) =>
      assemble(rules, settledIds, settledPolicies, settledCosts),
    );
  }
  return assemble(rules, ids as string[], policyLists as (readonly Policy[])[], costs as number[]);
}

/** Each distinct cost source of the matched rules, evaluated once (the table's cost stands for rules without one). */
function ruleCosts<Req>(rules: readonly CompiledRule<Req>[], req: Req, tableCost: number | ((req: Req) => Awaitable<number>)): Awaitable<number>[] {
  const costs: Awaitable<number>[] = [];
  let tableCostUsed = false;
  for (const rule of rules) {
    if (rule.cost === undefined) {
      if (tableCostUsed) continue;
      tableCostUsed = true;
      costs.push(costOf(tableCost, req, 'cost'));
    } else {
      costs.push(costOf(rule.cost, req, rule.costOption));
    }
  }
  return costs;
}

function assemble<Req>(
  rules: readonly CompiledRule<Req>[],
  ids: readonly string[],
  policyLists: readonly (readonly Policy[])[],
  costs: readonly number[],
): LimitRequest {
  const parts: LimitPart[] = new Array(rules.length);
  for (let i = 0; i < rules.length; i++) parts[i] = { id: ids[i]!, prefix: rules[i]!.prefix, policies: policyLists[i]! };
  let cost = 1;
  for (const value of costs) if (value > cost) cost = value;
  return { parts, cost };
}
