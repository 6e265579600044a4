/**
 * Time budgets of store calls without one timer per call. Every call of a guard has the same
 * budget, so calls enter a per-budget queue in deadline order; ONE timer per budget waits for the
 * oldest call still pending. A call that settles is only marked (no timer to clear), and the timer,
 * when it fires, drops the settled calls at the head, fails the pending ones whose deadline passed,
 * and waits for the next pending one. Under steady traffic that is a few timer firings per second,
 * instead of a setTimeout and a clearTimeout per request.
 */
import { performance } from 'node:perf_hooks';

/** One call's place in its queue. */
export interface Deadline {
  readonly at: number;
  /** Set when the call settled in time: the timer then passes over it. */
  settled: boolean;
  /** Called (once) when the deadline passes before the call settled. */
  readonly expire: () => void;
}

/** Fewer pending calls than this keep their dropped head in the array; beyond, it is compacted. */
const COMPACT_AFTER = 1_024;

class DeadlineQueue {
  #entries: Deadline[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly budgetMs: number) {}

  add(expire: () => void): Deadline {
    const deadline: Deadline = { at: performance.now() + this.budgetMs, settled: false, expire };
    this.#entries.push(deadline);
    if (this.#timer === undefined) this.#arm(deadline.at);
    return deadline;
  }

  #arm(at: number): void {
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, Math.ceil(at - performance.now())));
    // A pending store call must not keep the process alive by its budget alone.
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    const now = performance.now();
    const entries = this.#entries;
    while (this.#head < entries.length) {
      const deadline = entries[this.#head]!;
      if (!deadline.settled) {
        if (deadline.at > now) break;
        deadline.settled = true;
        deadline.expire();
      }
      this.#head++;
    }
    if (this.#head >= entries.length) {
      this.#entries = [];
      this.#head = 0;
      return;
    }
    if (this.#head > COMPACT_AFTER) {
      this.#entries = entries.slice(this.#head);
      this.#head = 0;
    }
    this.#arm(this.#entries[this.#head]!.at);
  }
}

const queues = new Map<number, DeadlineQueue>();

/** Starts the budget of one call: `expire` runs when `budgetMs` pass before `deadline.settled` is set. */
export function startDeadline(budgetMs: number, expire: () => void): Deadline {
  let queue = queues.get(budgetMs);
  if (queue === undefined) queues.set(budgetMs, (queue = new DeadlineQueue(budgetMs)));
  return queue.add(expire);
}
