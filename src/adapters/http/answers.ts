/**
 * Every response ratelock sends itself, in ONE model (`HttpAnswer`: status, headers, body) that
 * each framework writes with one function: the limited response (`message` option, default a
 * problem+json `quota-exceeded` document), the fail-closed 503 (the same for limiters and locks),
 * and withLock's refusals and replays. Refusals are `application/problem+json` (RFC 9457) with a
 * `code` member clients can branch on, and are never stored for replay.
 *
 * | status | code | when |
 * | --- | --- | --- |
 * | 429 | (type `quota-exceeded`, title `Quota Exceeded`) | an enforced limit is exhausted (`statusCode` and `message` options) |
 * | 429 | (type `abnormal-usage-detected`) | the client's penalty box is closed (`block` option; same options) |
 * | 400 | `idempotency-key-missing` / `idempotency-key-invalid` | no usable Idempotency-Key (default lock key) |
 * | 400 | `lock-key-missing` | a custom `key` extractor yielded nothing |
 * | 409 | `lock-busy` / `idempotency-in-flight` | another holder runs (`Retry-After` = its lease left, ≥ 1 s) |
 * | 409 | `idempotency-not-replayable` | the key's request completed but its response was too large to store |
 * | 422 | `idempotency-key-reused` | same key, different request fingerprint (also while in flight) |
 * | 503 | `store-unavailable` | the store failed or timed out and the guard fails closed (`Retry-After: 1`) |
 *
 * The 503 keeps `about:blank`: the draft's `temporary-reduced-capacity` announces a lowered quota,
 * whereas here the store is out of reach and nothing is known about any quota.
 */
import { STATUS_CODES } from 'node:http';
import { ConfigError, DEFAULTS, formatDuration, formatValue, isThenable, type Awaitable, type BusyInfo, type Decision, type KeyReading, type LockOutcome, type StoredResponse } from '../../core/index.js';
import { retryAfterSeconds, toSeconds } from './headers.js';
import { REPLAYED_HEADER } from './idempotency-headers.js';
import { ABNORMAL_USAGE_DETECTED_TITLE, ABNORMAL_USAGE_DETECTED_TYPE, problem, QUOTA_EXCEEDED_TITLE, QUOTA_EXCEEDED_TYPE } from './problem.js';

/** A complete response: status, headers (Content-Type included) and body. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly body: string | Buffer;
}

/** A JSON-serialisable object (sent as `application/json`). */
export type JsonObject = Readonly<Record<string, unknown>> | readonly unknown[];

/** `message` option: text (`text/plain`), a JSON object, or a function of the request and decision returning either. */
export type MessageOption<Req> = string | JsonObject | ((req: Req, decision: Decision) => Awaitable<string | JsonObject>);

/** Builds one limited response; `status` is the configured `statusCode`. Returns a promise only for an async `message`. */
export type MessageBuilder<Req> = (req: Req, decision: Decision, status: number) => Awaitable<HttpAnswer>;

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

function answer(status: number, contentType: string, body: string, headers: Readonly<Record<string, string>> = {}): HttpAnswer {
  return { status, headers: { ...headers, 'Content-Type': contentType }, body };
}

function problemAnswer(
  status: number,
  code: string | undefined,
  detail: string,
  headers: Record<string, string> = {},
  extra: Record<string, unknown> = {},
  title: string | undefined = STATUS_CODES[status],
): HttpAnswer {
  const { contentType, body } = problem(status, title, detail, code === undefined ? extra : { code, ...extra });
  return answer(status, contentType, body, headers);
}

/**
 * Whether the adapter lets the request through: allowed, or decided in shadow mode (never enforced,
 * whatever `allowed` says). Otherwise it answers 429 (limited) or 503 (`error`: the store failed
 * and the limiter fails closed).
 */
export function passes(decision: Decision): boolean {
  return decision.allowed || decision.shadow;
}

/**
 * The default limited response: an RFC 9457 problem of the ratelimit-headers draft's type
 * `quota-exceeded` (-09 and later): its registered title, and `violated-policies` naming the
 * deciding policy.
 */
export function quotaExceededAnswer(_req: unknown, decision: Decision, status: number): HttpAnswer {
  const seconds = retryAfterSeconds(decision);
  // A 429 flood repeats the same answer (same policy, limit and seconds): it is built once per change.
  const last = lastLimitedAnswers.get(decision.policy);
  if (last !== undefined && last.status === status && last.limit === decision.limit && last.seconds === seconds && last.reason === decision.reason) {
    return last.answer;
  }
  const answer = buildQuotaExceededAnswer(decision, status, seconds);
  lastLimitedAnswers.set(decision.policy, { status, limit: decision.limit, seconds, reason: decision.reason, answer });
  return answer;
}

/** The last default limited answer of each policy, with what it was built from (answers are never mutated). */
const lastLimitedAnswers = new WeakMap<object, { status: number; limit: number; seconds: number; reason: Decision['reason']; answer: HttpAnswer }>();

function buildQuotaExceededAnswer(decision: Decision, status: number, seconds: number): HttpAnswer {
  if (decision.reason === 'blocked') {
    // The penalty box: the draft's type for a client refused for how it behaves, not for a quota.
    return problemAnswer(
      status,
      undefined,
      `Blocked for repeatedly exceeding policy "${decision.policy.name}"; retry in ${seconds} s.`,
      {},
      { type: ABNORMAL_USAGE_DETECTED_TYPE, 'violated-policies': [decision.policy.name] },
      ABNORMAL_USAGE_DETECTED_TITLE,
    );
  }
  return problemAnswer(
    status,
    undefined,
    `Quota of policy "${decision.policy.name}" exceeded (${decision.limit} per ${formatDuration(decision.policy.windowMs)}); retry in ${seconds} s.`,
    {},
    { type: QUOTA_EXCEEDED_TYPE, 'violated-policies': [decision.policy.name] },
    QUOTA_EXCEEDED_TITLE,
  );
}

/** The response of a guard that fails closed because its store failed: the same for limiters and locks. */
export const STORE_UNAVAILABLE_ANSWER: HttpAnswer = problemAnswer(
  DEFAULTS.storeErrorStatusCode,
  'store-unavailable',
  'The rate-limit and lock store is unavailable; retry shortly.',
  { 'Retry-After': String(toSeconds(DEFAULTS.storeErrorRetryAfterMs, 1)) },
);

/** Validates the `message` option once and returns its builder. */
export function resolveMessage<Req>(value: unknown): MessageBuilder<Req> {
  if (value === undefined) return quotaExceededAnswer;
  if (typeof value === 'function') {
    const build = value as (req: Req, decision: Decision) => Awaitable<unknown>;
    // A function that returns nothing usable (undefined, null, a number…) falls back to the default
    // body: the client must still get its 429 and Retry-After, not a 500 for our user's slip.
    return (req, decision, status) => {
      const result = build(req, decision);
      const toAnswer = (settled: unknown) => messageAnswer(settled, status) ?? quotaExceededAnswer(req, decision, status);
      return isThenable(result) ? Promise.resolve(result).then(toAnswer) : toAnswer(result);
    };
  }
  const fixed = messageAnswer(value, 0);
  if (fixed === null) throw new ConfigError(`message must be a string or a JSON-serialisable object; got ${formatValue(value)}`);
  return (_req, _decision, status) => ({ ...fixed, status });
}

/** A message value as an answer, or null when it is neither text nor a JSON-serialisable object. */
function messageAnswer(value: unknown, status: number): HttpAnswer | null {
  if (typeof value === 'string') return answer(status, TEXT, value);
  if (value !== null && typeof value === 'object') {
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      json = undefined;
    }
    if (typeof json === 'string') return answer(status, JSON_TYPE, json);
  }
  return null;
}

/** withLock's answer when the key is busy (unless `onBusy` answered). */
export function busyAnswer(info: BusyInfo): HttpAnswer {
  const seconds = toSeconds(info.retryAfterMs, 1);
  const detail =
    info.reason === 'in-flight'
      ? `A request with this Idempotency-Key is still in progress; retry in ${seconds} s.`
      : `Another request holds the lock on this key; retry in ${seconds} s.`;
  return problemAnswer(409, info.reason === 'in-flight' ? 'idempotency-in-flight' : 'lock-busy', detail, { 'Retry-After': String(seconds) });
}

const MISSING_LOCK_KEY_ANSWER = problemAnswer(400, 'lock-key-missing', 'This request carries no lock key (the key extractor yielded none).');

const KEY_REUSED_ANSWER = problemAnswer(
  422,
  'idempotency-key-reused',
  'This Idempotency-Key was already used for a different request (method, path, query or body); use a new key.',
);

function invalidIdempotencyKeyAnswer(reading: Extract<KeyReading, { ok: false }>): HttpAnswer {
  return problemAnswer(400, reading.problem === 'missing' ? 'idempotency-key-missing' : 'idempotency-key-invalid', reading.detail);
}

function notReplayableAnswer(originalStatus: number): HttpAnswer {
  return problemAnswer(
    409,
    'idempotency-not-replayable',
    `The request with this Idempotency-Key already completed (status ${originalStatus}), but its response was too large to store for replay; use a new key to repeat the operation.`,
    {},
    { 'original-status': originalStatus },
  );
}

/** A stored response sent again: its status, stored headers and body, marked `Idempotent-Replayed: true`. */
function replayAnswer(response: StoredResponse): HttpAnswer {
  if (response.body === null) return notReplayableAnswer(response.status);
  return { status: response.status, headers: { ...response.headers, [REPLAYED_HEADER]: 'true' }, body: response.body };
}

/** An outcome withLock answers without running the handler (a client that left gets no answer). */
export type AnsweredOutcome = Exclude<LockOutcome, { kind: 'held' } | { kind: 'client-gone' }>;

/** The answer of a withLock outcome that does not run the handler (busy included, when `onBusy` did not answer). */
export function lockAnswer(outcome: AnsweredOutcome): HttpAnswer {
  switch (outcome.kind) {
    case 'busy':
      return busyAnswer(outcome.info);
    case 'replay':
      return replayAnswer(outcome.response);
    case 'mismatch':
      return KEY_REUSED_ANSWER;
    case 'no-key':
      return outcome.reading === undefined || outcome.reading.ok ? MISSING_LOCK_KEY_ANSWER : invalidIdempotencyKeyAnswer(outcome.reading);
    case 'store-failed':
      return STORE_UNAVAILABLE_ANSWER;
  }
}
