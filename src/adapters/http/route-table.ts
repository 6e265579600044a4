/**
 * `rateLimitRoutes`: a table of rules compiled ONCE at startup (validated, keys and limits
 * resolved, patterns bucketed), and the per-request resolver that turns the rules matching a
 * request into ONE store call.
 *
 * - Every matching rule applies; each is one LimitPart with its own id (from its key spec) and its
 *   own prefix `${prefix}${rule name}:`, so two rules never share a log. All their limits are
 *   decided together, all or nothing.
 * - A rule is named by its `name`, else after its route (`'POST /login'` → `'POST_/login'`), never
 *   by its index: reordering a table, or mounting two tables, never makes rules trade or share logs.
 * - Policy names are `<rule name>/<limit name>` (e.g. `login/5-in-15m`), so headers and
 *   `decision.policy` say which rule decided.
 * - Each matching rule charges its own cost (its `cost`, else the table's `cost`, else 1) to its
 *   own limits, still in the one all-or-nothing store call.
 * - Unmatched requests are untouched: no store call, no headers.
 */
import {
  ConfigError,
  MAX_PREFIX_LENGTH,
  claimLogs,
  costOf,
  digest,
  formatValue,
  isThenable,
  optionNames,
  policiesFor,
  readOptions,
  resolveBlock,
  validateAlgorithm,
  resolveLimits,
  resolveShadowMode,
  staticPolicies,
  unlessSkipped,
  validatePrefix,
  type Awaitable,
  type CostOption,
  type Algorithm,
  type BlockOptions,
  type LimitDefinition,
  type PenaltyBoxSettings,
  type LimitMode,
  type LimitPart,
  type LimitRequest,
  type LimitRequestResolver,
  type OptionNames,
  type Policy,
  type ResolvedLimit,
} from '../../core/index.js';
import { RouteKeyCompiler, type KeyResolver, type KeySpecContext, type RouteKeySpec } from '../../keys/index.js';
import { precomputeHeaderStrings } from './headers.js';
import { HTTP_LIMITER_OPTIONS, resolveCostOption, resolveHttpLimiterParts, type HttpLimiter, type HttpLimiterOptions } from './limiter-options.js';
import { JoinedPolicies, type StaticRule } from './policy-sets.js';
import { RouteMatcher } from './route-matcher.js';
import { PARAM, parseRoute, splitPath, type RoutePattern } from './route-pattern.js';

/** One rule of the table; every field is JSON-representable except optional functions. */
export interface RouteRule<Req> {
  /** `'[METHOD ]PATH'`: `'POST /login'`, `'/users/:id'`, `'/api/*'`. */
  route: string;
  /** Quota per `window` (or a function of the request). Use with `window`, or use `limits`. */
  limit?: number | ((req: Req) => Awaitable<number>) | undefined;
  window?: LimitDefinition['window'] | undefined;
  limits?: readonly (Omit<LimitDefinition, 'limit'> & { limit: number | ((req: Req) => Awaitable<number>) })[] | undefined;
  /** Key spec: `'ip'`, `'ip/<bits>'`, `'header:<name>'`, `'user'`, `'query:<name>'`, a function, or a list. @default the table's `key`, else 'ip' */
  key?: RouteKeySpec<Req> | undefined;
  /** Cost of a request matching this rule. @default the table's `cost`, else 1 */
  cost?: number | ((req: Req) => Awaitable<number>) | undefined;
  /**
   * Names the rule in keys and policy names: 1–32 of letters, digits, `_ . -`. A named rule keeps
   * its logs when its route text is edited. @default its route with other characters as `_` (`'POST_/login'`)
   */
  name?: string | undefined;
  /** `'shadow'`: this rule is decided and recorded but never refuses (see the `mode` option). @default the table's `mode` */
  mode?: LimitMode | undefined;
  /** How this rule's limits count (unless a limit says otherwise). @default the table's `algorithm` */
  algorithm?: Algorithm | undefined;
  /** GCRA with `limit`/`window`: units that may pass at once. @default limit */
  burst?: number | undefined;
  /** This rule's penalty box, or `false` for none. @default the table's `block` */
  block?: BlockOptions | false | undefined;
}

/** `rateLimitRoutes()` options: the rules, plus every rateLimit option, applied to all rules. */
export interface RateLimitRoutesOptionsBase<Req, OnLimited, RefundPredicate> extends HttpLimiterOptions<Req, OnLimited, RefundPredicate> {
  routes: readonly RouteRule<Req>[];
  /**
   * What the `'user'` key spec means, e.g. `(req) => req.user?.id`. Required if a rule uses `'user'`.
   * Takes `req` untyped, as `keys.user()` does: where the user lives is the app's auth middleware's
   * business, which framework request types do not declare.
   */
  user?: ((req: any) => string | number | bigint | undefined | null | Promise<string | number | bigint | undefined | null>) | undefined;
  /** Key spec of rules without one. @default 'ip' */
  key?: RouteKeySpec<Req> | undefined;
}

/** One rule, compiled. */
export interface CompiledRule<Req> {
  readonly index: number;
  /** The `name` option, else derived from the route (see `ruleNameFromRoute`). */
  readonly name: string;
  readonly pattern: RoutePattern;
  readonly prefix: string;
  readonly limits: readonly ResolvedLimit[];
  readonly policies: readonly Policy[] | undefined;
  readonly key: KeyResolver<Req>;
  readonly cost: CostOption<Req> | undefined;
  readonly costOption: string;
  /** Its effective mode is `'shadow'` (its own `mode`, else the table's). */
  readonly shadow: boolean;
  /** Its penalty box (its own `block`, else the table's). */
  readonly block: PenaltyBoxSettings | undefined;
}

/** The table's limiter, with its compiled rules (for diagnostics and tests). */
export interface RouteTable<Req, OnLimited, RefundPredicate> extends HttpLimiter<Req, OnLimited, RefundPredicate> {
  readonly rules: readonly CompiledRule<Req>[];
}

const TABLE_OPTION_NAMES = optionNames<RateLimitRoutesOptionsBase<unknown, unknown, unknown>>({ ...HTTP_LIMITER_OPTIONS, routes: true, user: true, key: true });
const RULE_FIELDS: OptionNames<RouteRule<unknown>> = { route: true, limit: true, window: true, limits: true, key: true, cost: true, name: true, mode: true, algorithm: true, burst: true, block: true };
const RULE_FIELD_NAMES = optionNames(RULE_FIELDS);
const MAX_RULE_NAME_LENGTH = 32;
const RULE_NAME_PATTERN = new RegExp(`^[A-Za-z0-9_.-]{1,${MAX_RULE_NAME_LENGTH}}$`);
/** What a name derived from a route replaces with `_`: everything a limit name may not hold. */
const UNSAFE_IN_DERIVED_NAME = /[^A-Za-z0-9_.:/@-]/g;

/**
 * How the table reads a request's method (upper case) and path (the adapter's whole path; a
 * query string or an absolute form is cut off by routingPaths). Each adapter's routes.ts has one.
 */
export interface RouteAccess<Req> {
  method(req: Req): string;
  path(req: Req): string;
}

/** The name that error messages give the table. */
const OWNER = 'rateLimitRoutes()';

/** Validates the table and every option, and compiles the rules. Throws a ConfigError naming the rule index and field. */
export function compileRouteTable<Req, OnLimited, RefundPredicate>(
  options: RateLimitRoutesOptionsBase<Req, OnLimited, RefundPredicate>,
  route: RouteAccess<Req>,
): RouteTable<Req, OnLimited, RefundPredicate> {
  for (const misplaced of ['limit', 'window', 'limits'] as const) {
    if ((options as unknown as Record<string, unknown> | null)?.[misplaced] !== undefined) {
      throw new ConfigError(`${OWNER} has no option "${misplaced}": limits belong to each rule of routes, e.g. routes: [{ route: 'GET /search', limit: 10, window: '1s' }]`);
    }
  }
  const defined = readOptions(options, TABLE_OPTION_NAMES, OWNER, "{ routes: [{ route: 'POST /login', limit: 5, window: '15m' }] }");
  const { cost, skip, shadow, algorithm, block, ...limiter } = resolveHttpLimiterParts<Req, OnLimited, RefundPredicate>(defined);
  if (defined.user !== undefined && typeof defined.user !== 'function') {
    throw new ConfigError(`user must be a function (req) => user id, used by the 'user' key spec; got ${formatValue(defined.user)}`);
  }
  const { store, logger, prefix } = limiter.limiter;
  const keyCompiler = new RouteKeyCompiler<Req>({ user: defined.user as KeySpecContext<Req>['user'], logger });
  const defaultKey = defined.key ?? 'ip';
  const routes = defined.routes;
  if (!Array.isArray(routes) || routes.length === 0) {
    throw new ConfigError(`routes must be a non-empty array of rules like { route: 'POST /login', limit: 5, window: '15m', key: 'ip' }; got ${formatValue(routes)}`);
  }
  const names = new Map<string, number>();
  const unnamedShapes = new Map<string, number>();
  const rules = routes.map((rule: unknown, index) => {
    const compiled = compileRule(rule, index, prefix, defaultKey, keyCompiler, { shadow, algorithm, block });
    const previous = names.get(compiled.name);
    if (previous !== undefined) {
      throw new ConfigError(
        `routes[${index}].name must differ from the name of routes[${previous}]: both are ${formatValue(compiled.name)} ` +
          '(a rule without a name is named after its route); give one of them a name',
      );
    }
    names.set(compiled.name, index);
    // Unnamed rules whose routes differ only in parameter names ('/u/:id', '/u/:name') match the
    // same requests, and would each charge them.
    if ((rule as { name?: unknown }).name === undefined) {
      const shape = routeShape(compiled.pattern);
      const same = unnamedShapes.get(shape);
      if (same !== undefined) {
        throw new ConfigError(
          `routes[${index}].route matches the same requests as routes[${same}].route (${formatValue(shape)}), so both would charge them; ` +
            'merge the two rules, or give one of them a name if both limits are meant',
        );
      }
      unnamedShapes.set(shape, index);
    }
    return compiled;
  });
  for (const rule of rules) claimLogs(store, rule.prefix, rule.limits, logger);
  const matcher = new RouteMatcher(rules);
  const joined = new JoinedPolicies();
  const resolve: LimitRequestResolver<Req> = (req) => {
    const matched = matcher.match(route.method(req), route.path(req));
    if (matched.length === 0) return undefined;
    if (skip === undefined) return buildRequest(matched, req, cost, joined);
    return unlessSkipped(skip, req, () => buildRequest(matched, req, cost, joined));
  };
  return { ...limiter, resolve, rules };
}

function compileRule<Req>(
  rule: unknown,
  index: number,
  tablePrefix: string,
  defaultKey: unknown,
  keyCompiler: RouteKeyCompiler<Req>,
  table: { readonly shadow: boolean; readonly algorithm: Algorithm; readonly block: PenaltyBoxSettings | undefined },
): CompiledRule<Req> {
  const path = `routes[${index}]`;
  const fields = readOptions(rule, RULE_FIELD_NAMES, path, "{ route: 'GET /search', limit: 10, window: '1s' }", 'fields');
  const pattern = parseRoute(fields.route, `${path}.route`);
  const named = fields.name !== undefined;
  const name = named ? validateRuleName(fields.name, `${path}.name`) : ruleNameFromRoute(fields.route as string);
  const prefix = `${tablePrefix}${name}:`;
  if (prefix.length > MAX_PREFIX_LENGTH) {
    const source = named ? `${path}.name` : `${path}.route (an unnamed rule is named after its route)`;
    throw new ConfigError(
      `${source} makes the key prefix ${formatValue(prefix)} longer than ${MAX_PREFIX_LENGTH} characters; give the rule a shorter name or shorten the prefix option`,
    );
  }
  validatePrefix(prefix, named ? `${path}.name` : `${path}.route`);
  // Policy names carry the rule's name, so headers and decisions say which rule decided.
  const algorithm = validateAlgorithm(fields.algorithm, `${path}.algorithm`, table.algorithm);
  const limits = resolveLimits(fields, path, { allowDynamic: true, algorithm }).map((limit) => ({ ...limit, name: `${name}/${limit.name}` }));
  const policies = staticPolicies(limits);
  if (policies !== undefined) precomputeHeaderStrings(policies);
  return {
    index,
    name,
    pattern,
    prefix,
    limits,
    policies,
    key: keyCompiler.compile(fields.key ?? defaultKey, fields.key === undefined ? 'key' : `${path}.key`),
    cost: resolveCostOption<Req>(fields.cost, `${path}.cost`),
    costOption: `${path}.cost`,
    shadow: fields.mode === undefined ? table.shadow : resolveShadowMode(fields.mode, `${path}.mode`),
    block: fields.block === undefined ? table.block : fields.block === false ? undefined : resolveBlock(fields.block, `${path}.block`),
  };
}

function validateRuleName(value: unknown, option: string): string {
  if (typeof value !== 'string' || !RULE_NAME_PATTERN.test(value)) {
    throw new ConfigError(`${option} must be 1 to ${MAX_RULE_NAME_LENGTH} characters from letters, digits and _ . -; got ${formatValue(value)}`);
  }
  return value;
}

/**
 * The name of a rule without one, from its route as it matches: `'POST /login'` → `'POST_/login'`,
 * `'/api/*'` → `'/api/_'`. Spellings that match the same requests (`'get /Login/'`, `'GET //login'`)
 * get the same name, so two such rules are reported as duplicates instead of silently counting
 * twice. A route longer than 32 characters keeps its start plus 8 characters of a digest of the
 * whole text, so two long routes never share a name.
 */
export function ruleNameFromRoute(route: string): string {
  const text = canonicalRoute(route);
  const name = text.replace(UNSAFE_IN_DERIVED_NAME, '_');
  if (name.length <= MAX_RULE_NAME_LENGTH) return name;
  return `${name.slice(0, MAX_RULE_NAME_LENGTH - 9)}-${digest(text).slice(0, 8)}`;
}

/** What a pattern matches, parameter names left out: `GET /u/:` for `'get /U/:id/'`. */
function routeShape(pattern: RoutePattern): string {
  const path = pattern.segments.map((segment) => (segment === PARAM ? ':' : segment)).join('/');
  return `${pattern.method ?? '*'} /${path}${pattern.prefix ? '/*' : ''}`;
}

/** `route` as matching sees it: method upper-case, path lower-case without empty segments. */
function canonicalRoute(route: string): string {
  const text = route.trim();
  const space = text.indexOf(' ');
  const method = space === -1 ? '' : `${text.slice(0, space).toUpperCase()} `;
  const path = space === -1 ? text : text.slice(space + 1).trim();
  return path === '*' ? `${method}*` : `${method}/${splitPath(path).join('/')}`;
}

/**
 * The parts and cost of a request matched by `rules`, synchronous unless a callback is async. When
 * several static rules match, the request carries their joined policies from `joined`.
 */
function buildRequest<Req>(
  rules: readonly CompiledRule<Req>[],
  req: Req,
  tableCost: CostOption<Req>,
  joined: JoinedPolicies,
): Awaitable<LimitRequest> {
  const count = rules.length;
  const ids: Awaitable<string>[] = new Array(count);
  const policyLists: Awaitable<readonly Policy[]>[] = new Array(count);
  let pending = false;
  let allStatic = true;
  for (let i = 0; i < count; i++) {
    const rule = rules[i]!;
    // Rules with the same key spec share a resolver: compute each distinct key once.
    let id: Awaitable<string> | undefined;
    for (let j = 0; j < i && id === undefined; j++) if (rules[j]!.key === rule.key) id = ids[j];
    ids[i] = id ??= rule.key(req);
    const policies = rule.policies ?? policiesFor(rule.limits, req);
    allStatic &&= rule.policies !== undefined;
    policyLists[i] = policies;
    pending ||= isThenable(id) || isThenable(policies);
  }
  const policies = count > 1 && allStatic ? joined.get(rules as readonly StaticRule[]) : undefined;
  const costs = ruleCosts(rules, req, tableCost);
  if (pending || costs.some(isThenable)) {
    return Promise.all([Promise.all(ids), Promise.all(policyLists), Promise.all(costs)]).then(([settledIds, settledPolicies, settledCosts]) =>
      assemble(rules, settledIds, settledPolicies, settledCosts, policies),
    );
  }
  return assemble(rules, ids as string[], policyLists as (readonly Policy[])[], costs as number[], policies);
}

/** The cost of each matched rule, in order: its own, else the table's (evaluated once for all rules without one). */
function ruleCosts<Req>(rules: readonly CompiledRule<Req>[], req: Req, tableCost: CostOption<Req>): Awaitable<number>[] {
  const costs: Awaitable<number>[] = new Array(rules.length);
  let sharedTableCost: Awaitable<number> | undefined;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    costs[i] = rule.cost === undefined ? (sharedTableCost ??= costOf(tableCost, req, 'cost')) : costOf(rule.cost, req, rule.costOption);
  }
  return costs;
}

/**
 * The LimitRequest of the matched rules. When their costs differ, each part carries its rule's
 * cost so the store charges every rule exactly its own; when they agree (the common case), the
 * parts carry none and that cost is the call's. A shadow rule's part is marked `shadow`.
 */
function assemble<Req>(
  rules: readonly CompiledRule<Req>[],
  ids: readonly string[],
  policyLists: readonly (readonly Policy[])[],
  costs: readonly number[],
  policies: readonly Policy[] | undefined,
): LimitRequest {
  const cost = costs[0]!;
  const uniform = costs.every((value) => value === cost);
  const parts: LimitPart[] = new Array(rules.length);
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    let part: LimitPart = rule.shadow
      ? { id: ids[i]!, prefix: rule.prefix, policies: policyLists[i]!, shadow: true }
      : { id: ids[i]!, prefix: rule.prefix, policies: policyLists[i]! };
    if (rule.block !== undefined) part = { ...part, block: rule.block };
    parts[i] = uniform ? part : { ...part, cost: costs[i]! };
  }
  return { parts, cost, policies };
}
