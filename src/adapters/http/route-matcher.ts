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

  /** `rules` in table order; that order is kept in every match. */
  constructor(rules: readonly Rule[]) {
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

  /** The rules that apply to this request, in table order (a shared empty array when none). */
  match(method: string, path: string): readonly Rule[] {
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
