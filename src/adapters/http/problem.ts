/**
 * RFC 9457 problem details (`application/problem+json`), the body of every response ratelock sends
 * itself (429, 503, 409, 422, 400). Framework-agnostic: adapters write `contentType` and `body`.
 */
import { STATUS_CODES } from 'node:http';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/**
 * Problem types of draft-ietf-httpapi-ratelimit-headers (-09 and later, §5), each with the title
 * it registers (RFC 9457: a type's title does not change between occurrences) and the extension
 * member `violated-policies` (the names of the policies whose quota was exceeded).
 */
/** 429: the client's requests exceed one or more quota policies. ratelock's default limited body. */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded';
export const QUOTA_EXCEEDED_TITLE = 'Quota Exceeded';
/*
 * (The third, `temporary-reduced-capacity` (503: a temporarily lowered quota), is not used: a
 * store outage says nothing about any quota; see answers.ts.)
 */
/** 429: a pattern of requests suggests unintentional or malicious behaviour: the type of a penalty box's refusal. */
export const ABNORMAL_USAGE_DETECTED_TYPE = 'https://iana.org/assignments/http-problem-types#abnormal-usage-detected';
export const ABNORMAL_USAGE_DETECTED_TITLE = 'Abnormal Usage Detected';

/** Members `problem()` sets from its own arguments; `extra` cannot override them (only `type`, read above). */
const RESERVED_MEMBERS = new Set(['type', 'title', 'status', 'detail']);

export interface ProblemResponse {
  readonly contentType: typeof PROBLEM_CONTENT_TYPE;
  readonly body: string;
}

/**
 * Builds a problem+json body: `{ type, title, status, detail?, ...extra }`. `type` defaults to
 * `'about:blank'` (RFC 9457 §4.2.1) unless `extra.type` gives one; `title` defaults to the status text.
 *
 * @example problem(409, 'Conflict', 'A request with this Idempotency-Key is in progress.')
 */
export function problem(status: number, title?: string, detail?: string, extra?: Readonly<Record<string, unknown>>): ProblemResponse {
  const body: Record<string, unknown> = {
    type: extra?.type ?? 'about:blank',
    title: title ?? STATUS_CODES[status] ?? 'Error',
    status,
  };
  if (detail !== undefined) body.detail = detail;
  if (extra) {
    for (const name of Object.keys(extra)) {
      if (!RESERVED_MEMBERS.has(name) && extra[name] !== undefined) body[name] = extra[name];
    }
  }
  return { contentType: PROBLEM_CONTENT_TYPE, body: JSON.stringify(body) };
}
