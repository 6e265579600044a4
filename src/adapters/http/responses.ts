/**
 * Bodies of the responses the rate limiter sends itself: the limited response (`message` option,
 * default a problem+json `quota-exceeded` document) and the fail-closed 503.
 */
import { STATUS_CODES } from 'node:http';
import { ConfigError } from '../../core/errors.js';
import { DEFAULTS } from '../../core/defaults.js';
import { formatValue, formatDuration } from '../../core/duration.js';
import type { Decision } from '../../core/decision.js';
import { isThenable, type Awaitable } from '../../core/options.js';
import { retryAfterSeconds } from './headers.js';
import { problem, QUOTA_EXCEEDED_TYPE } from './problem.js';

/** A response body with its content type. */
export interface ResponseBody {
  readonly contentType: string;
  readonly body: string;
}

/** A JSON-serialisable object (sent as `application/json`). */
export type JsonObject = Readonly<Record<string, unknown>> | readonly unknown[];

/** `message` option: text (`text/plain`), a JSON object, or a function of the request and decision returning either. */
export type MessageOption<Req> = string | JsonObject | ((req: Req, decision: Decision) => Awaitable<string | JsonObject>);

/** Builds the body of one limited response; `status` is the configured `statusCode`. Returns a promise only for an async `message`. */
export type MessageBuilder<Req> = (req: Req, decision: Decision, status: number) => Awaitable<ResponseBody>;

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

/** The default body: RFC 9457 problem `quota-exceeded` from the ratelimit-headers draft. */
export function quotaExceededBody(_req: unknown, decision: Decision, status: number): ResponseBody {
  const seconds = retryAfterSeconds(decision);
  return problem(
    status,
    STATUS_CODES[status],
    `Quota of policy "${decision.policy.name}" exceeded (${decision.limit} per ${formatDuration(decision.policy.windowMs)}); retry in ${seconds} s.`,
    { type: QUOTA_EXCEEDED_TYPE, 'violated-policies': [decision.policy.name] },
  );
}

/** Body of a request refused because the store failed and `onStoreError` is `'closed'`. */
export const STORE_UNAVAILABLE_BODY: ResponseBody = problem(
  DEFAULTS.storeErrorStatusCode,
  STATUS_CODES[DEFAULTS.storeErrorStatusCode],
  'The rate-limit store is unavailable; retry shortly.',
);

/** Validates the `message` option once and returns its builder. */
export function resolveMessage<Req>(value: unknown): MessageBuilder<Req> {
  if (value === undefined) return quotaExceededBody;
  if (typeof value === 'function') {
    const build = value as (req: Req, decision: Decision) => Awaitable<unknown>;
    // A function that returns nothing usable (undefined, null, a number…) falls back to the default
    // body: the client must still get its 429 and Retry-After, not a 500 for our user's slip.
    return (req, decision, status) => {
      const result = build(req, decision);
      const toBody = (value: unknown) => messageBodyOrNull(value) ?? quotaExceededBody(req, decision, status);
      return isThenable(result) ? Promise.resolve(result).then(toBody) : toBody(result);
    };
  }
  const body = messageBody(value, 'message');
  return () => body;
}

/** A message value as a body; a bad value is a ConfigError naming `option`. */
function messageBody(value: unknown, option: string): ResponseBody {
  const body = messageBodyOrNull(value);
  if (body === null) throw new ConfigError(`${option} must be a string or a JSON-serialisable object; got ${formatValue(value)}`);
  return body;
}

/** A message value as a body, or null when it is neither text nor a JSON-serialisable object. */
function messageBodyOrNull(value: unknown): ResponseBody | null {
  if (typeof value === 'string') return { contentType: TEXT, body: value };
  if (value !== null && typeof value === 'object') {
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      json = undefined;
    }
    if (typeof json === 'string') return { contentType: JSON_TYPE, body: json };
  }
  return null;
}
