/**
 * The scripted client of the lock examples (lock-express.ts, lock-koa.ts) and of the demo's lock
 * section: sends concurrent duplicates and retries, and returns one table row per response.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

export const LOCK_PROBE_HEADER = ['request', 'status', 'Idempotent-Replayed', 'Retry-After', 'body'] as const;

/** Stands for a handler's real work (charging a card, writing an order). */
export function slowly(ms = 500): Promise<void> {
  return sleep(ms);
}

/** Sends one JSON POST and returns its table row. */
export async function post(baseUrl: string, label: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<string[]> {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  const isProblem = response.headers.get('content-type')?.startsWith('application/problem+json') ?? false;
  const shown = isProblem ? `problem: ${(JSON.parse(text) as { code?: string }).code}` : text;
  return [
    label,
    String(response.status),
    response.headers.get('idempotent-replayed') ?? '-',
    response.headers.get('retry-after') ?? '-',
    shown.length > 48 ? `${shown.slice(0, 45)}...` : shown,
  ];
}

/** Concurrent checkouts of one cart, then a payment, its retry, a reused key, a missing key, and an order without a cart. */
export async function exerciseLocks(baseUrl: string): Promise<string[][]> {
  const rows = await Promise.all([1, 2, 3].map((n) => post(baseUrl, `POST /orders #${n} (cart c1)`, '/orders', { cartId: 'c1' })));
  const key = randomUUID();
  rows.push(await post(baseUrl, 'POST /payments (key A)', '/payments', { amount: 10 }, { 'Idempotency-Key': key }));
  rows.push(await post(baseUrl, 'POST /payments retry (key A)', '/payments', { amount: 10 }, { 'Idempotency-Key': key }));
  rows.push(await post(baseUrl, 'POST /payments other body (key A)', '/payments', { amount: 99 }, { 'Idempotency-Key': key }));
  rows.push(await post(baseUrl, 'POST /payments (no key)', '/payments', { amount: 10 }));
  rows.push(await post(baseUrl, 'POST /orders (no cartId)', '/orders', {}));
  return rows;
}
