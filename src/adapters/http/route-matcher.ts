/**
 * The route table compiled once into a lookup: rules are bucketed by their first path segment, so
 * a request only tests the rules that can match it (those starting with its first segment, plus
 * those starting with a `:param` or a `*`), in table order. No regex, no per-request compilation,
 * and no dependency on the framework's router.
 */
import { matchesRoute, PARAM, splitPath, type RoutePattern } from './route-pattern.js';

const NONE: readonly never[] = Object.freeze([]);

export class RouteMatcher<Rule extends { readonly pattern: RoutePattern }> {
  /** Candidates of a request whose first segment is the map key. */
  readonly #byFirstSegment = new Map<string, readonly Rule[]>();
  /** Candidates of a request whose first segment no rule names literally. */
  readonly #anyFirstSegment: readonly Rule[];
  /** Candidates of `/` (no segment). */
  readonly #root: readonly Rule[];
  /** Every rule, in table order: the candidates of a target read as several paths. */
  readonly #rules: readonly Rule[];

  /** `rules` in table order; that order is kept in every match. */
  constructor(rules: readonly Rule[]) {
    this.#rules = rules;
    const startsAnywhere = (rule: Rule) => rule.pattern.segments.length === 0 || rule.pattern.segments[0] === PARAM;
    this.#anyFirstSegment = rules.filter((rule) => startsAnywhere(rule) && (rule.pattern.segments.length > 0 || rule.pattern.prefix));
    this.#root = rules.filter((rule) => rule.pattern.segments.length === 0);
    for (const rule of rules) {
      const first = rule.pattern.segments[0];
      if (typeof first === 'string' && !this.#byFirstSegment.has(first)) {
        this.#byFirstSegment.set(
          first,
          rules.filter((candidate) => candidate.pattern.segments[0] === first || this.#anyFirstSegment.includes(candidate)),
        );
      }
    }
  }

  /**
   * The rules that apply to a request (`target`: its path, or its whole request-target), in table
   * order (a shared empty array when none). A target some router would read as another path
   * (`%6Cogin`, `/login#x`, `http://host/login`, `/login;x`) is matched as each of those paths too
   * (routingPaths): the table must apply wherever the app's router would run the route.
   */
  match(method: string, target: string): readonly Rule[] {
    const paths = routingPaths(target);
    if (paths === undefined) return this.#matchPath(method, target);
    if (paths.length === 1 && !hasEmptySegment(paths[0]!)) return this.#matchPath(method, paths[0]!);
    // Each path also with its empty segments kept: Fastify's router gives a `:param` an empty
    // value (`/u//edit` runs `/u/:id/edit`, `/p/` runs `/p/:id`), where splitPath drops them.
    const all = paths.flatMap((path) => (hasEmptySegment(path) ? [splitPath(path), splitKeepingEmpty(path)] : [splitPath(path)]));
    let matched: Rule[] | undefined;
    for (const rule of this.#rules) {
      if (all.some((segments) => matchesRoute(rule.pattern, method, segments))) (matched ??= []).push(rule);
    }
    return matched ?? NONE;
  }

  #matchPath(method: string, path: string): readonly Rule[] {
    const segments = splitPath(path);
    const first = segments[0];
    const candidates = first === undefined ? this.#root : (this.#byFirstSegment.get(first) ?? this.#anyFirstSegment);
    let matched: Rule[] | undefined;
    for (const rule of candidates) {
      if (matchesRoute(rule.pattern, method, segments)) (matched ??= []).push(rule);
    }
    return matched ?? NONE;
  }
}

/** `scheme://authority` of an absolute-form request-target (`GET http://host/login HTTP/1.1`). */
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

/**
 * The paths routers may read a request-target as, or undefined when it is a plain path (the
 * common case, checked without allocating). Framework routers differ: Express and Koa route the
 * undecoded path, Fastify (find-my-way) and Hono the percent-decoded one, Fastify also cuts at `#`
 * and, with `useSemicolonDelimiter`, at `;`, and routes an absolute-form target by its path. So:
 * the path without scheme and authority, cut at `?` and `#`; and that path percent-decoded (as
 * decodeURI: an encoded `/` stays one segment), and cut at `;`, wherever that reads differently;
 * a path with an empty segment is returned too, so that `match` reads it with them kept.
 * Matching every reading over-counts at worst a request the app's router answers 404 (charged to
 * its own key), never lets one reach a route uncounted.
 */
export function routingPaths(target: string): string[] | undefined {
  let path = target;
  if (path.charCodeAt(0) !== 47 /* '/' */) {
    const absolute = ABSOLUTE_FORM.exec(path);
    if (absolute !== null) path = path.slice(absolute[0].length) || '/';
  }
  const end = cutAt(path, '?', cutAt(path, '#', path.length));
  if (end < path.length) path = path.slice(0, end);
  if (path === target && !path.includes('%') && !path.includes(';') && !hasEmptySegment(path)) return undefined;
  const paths = [path];
  const add = (candidate: string) => {
    if (!paths.includes(candidate)) paths.push(candidate);
  };
  if (path.includes('%')) {
    try {
      add(decodeURI(path));
    } catch {
      // Malformed percent-encoding: routers that decode refuse it (400); the raw path still counts.
    }
  }
  for (const candidate of [...paths]) {
    const semicolon = candidate.indexOf(';');
    if (semicolon !== -1) add(candidate.slice(0, semicolon));
  }
  return paths;
}

/** Whether `path` has an empty segment past its leading `/`: `//`, or a trailing `/`. */
function hasEmptySegment(path: string): boolean {
  return path.includes('//') || (path.length > 1 && path.endsWith('/'));
}

/** Lower-case segments of a path, empty ones kept (`'/u//Edit'` → `['u', '', 'edit']`). */
function splitKeepingEmpty(path: string): string[] {
  return path.slice(path.startsWith('/') ? 1 : 0).toLowerCase().split('/');
}

/** The index of `char` in `text` if before `end`, else `end`. */
function cutAt(text: string, char: string, end: number): number {
  const index = text.indexOf(char);
  return index !== -1 && index < end ? index : end;
}
