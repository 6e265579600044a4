/**
 * The joined policy list of each set of route rules that match a request together, built once per
 * set (on its first request) with its header strings. A request matching several static rules then
 * carries a list that already has its `RateLimit-Policy` value, instead of joining the rules'
 * policies and formatting that header again every time.
 *
 * Sets are found without allocating: a tree of Maps keyed by rule, walked in table order (the
 * order in which the matcher returns rules). The number of sets a table can produce is bounded by
 * its patterns; `MAX_SETS` caps it anyway, past which lists are joined per request.
 */
import type { Policy } from '../../core/index.js';
import { precomputeHeaderStrings } from './headers.js';

/** A rule with static policies (a rule with a `limit(req)` function has none to join in advance). */
export interface StaticRule {
  readonly policies: readonly Policy[];
}

interface SetNode {
  readonly next: Map<StaticRule, SetNode>;
  policies?: readonly Policy[] | undefined;
}

const MAX_SETS = 1_024;

export class JoinedPolicies {
  readonly #root: SetNode = { next: new Map() };
  #nodes = 0;

  /** The joined policies of `rules` (in this order), or `undefined` once the cap is reached for a new set. */
  get(rules: readonly StaticRule[]): readonly Policy[] | undefined {
    let node = this.#root;
    for (const rule of rules) {
      let child = node.next.get(rule);
      if (child === undefined) {
        if (this.#nodes >= MAX_SETS) return undefined;
        this.#nodes++;
        child = { next: new Map() };
        node.next.set(rule, child);
      }
      node = child;
    }
    if (node.policies === undefined) {
      const joined = Object.freeze(rules.flatMap((rule) => rule.policies));
      precomputeHeaderStrings(joined);
      node.policies = joined;
    }
    return node.policies;
  }
}
