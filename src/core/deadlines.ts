/**
 * Time budgets of store calls without one timer per call. Every call of a guard has the same
 * budget, so calls enter a per-budget queue in deadline order; ONE timer per budget waits for the
 * oldest call still pending. A call that settles leaves its queue at once (a linked list in
 * deadline order: a removal is two pointer writes, with no table for V8 to rebuild as a Set's
 * add/delete churn makes it do): only pending calls are held,
 * so a settled call's objects die young instead of living for a whole budget (at 100 k calls/s and
 * a 250 ms budget, 25 k calls kept alive, promoted and marked by the GC). Under steady traffic the
 * timer fires a few times per second, instead of a setTimeout and a clearTimeout per request.
 */
import { performance } from 'node:perf_hooks';

/** One call's place in its queue. */
export interface Deadline {
  readonly at: number;
  /** True once the call settled in time or its deadline passed. */
  readonly settled: boolean;
  /**
   * Marks the call settled in time and takes it out of its queue; false if it had settled already
   * (the deadline passed first, or a second settle).
   */
  settle(): boolean;
}

class QueuedDeadline implements Deadline {
  settled = false;
  /** Neighbours in the queue: `earlier` has the earlier deadline. */
  earlier: QueuedDeadline | undefined;
  later: QueuedDeadline | undefined;
  constructor(
    readonly queue: DeadlineQueue,
    readonly at: number,
    readonly expire: () => void,
  ) {}

  settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.queue.remove(this);
    return true;
  }
}

class DeadlineQueue {
  /** Pending calls, earliest deadline first (all share one budget, so arrival order is deadline order). */
  #first: QueuedDeadline | undefined;
  #last: QueuedDeadline | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly budgetMs: number) {}

  add(expire: () => void): Deadline {
    const deadline = new QueuedDeadline(this, performance.now() + this.budgetMs, expire);
    deadline.earlier = this.#last;
    if (this.#last === undefined) this.#first = deadline;
    else this.#last.later = deadline;
    this.#last = deadline;
    if (this.#timer === undefined) this.#arm(deadline.at);
    return deadline;
  }

  remove(deadline: QueuedDeadline): void {
    // The timer stays armed: when it fires with nothing due it re-arms for the oldest, or stops.
    const { earlier, later } = deadline;
    if (earlier === undefined) this.#first = later;
    else earlier.later = later;
    if (later === undefined) this.#last = earlier;
    else later.earlier = earlier;
    deadline.earlier = undefined;
    deadline.later = undefined;
  }

  #arm(at: number): void {
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, Math.ceil(at - performance.now())));
    // A pending store call must not keep the process alive by its budget alone.
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    const now = performance.now();
    for (let deadline = this.#first; deadline !== undefined; deadline = this.#first) {
      if (deadline.at > now) {
        this.#arm(deadline.at);
        return;
      }
      this.remove(deadline);
      deadline.settled = true;
      deadline.expire();
    }
  }
}

const queues = new Map<number, DeadlineQueue>();

/** Starts the budget of one call: `expire` runs when `budgetMs` pass before `deadline.settle()` is called. */
export function startDeadline(budgetMs: number, expire: () => void): Deadline {
  let queue = queues.get(budgetMs);
  if (queue === undefined) queues.set(budgetMs, (queue = new DeadlineQueue(budgetMs)));
  return queue.add(expire);
}
