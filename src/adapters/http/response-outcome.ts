/**
 * When a Node response's outcome is known: it finished; or it closed after the app had answered
 * (as `answered` reads the response); or, when the client left before that, once the app ends the
 * response anyway (the handler settled, so its status is the one it produced, even though nothing
 * reaches the client). Never when the app never ends it. Refunds and the Fastify lock's release
 * both wait for this, each with its own notion of "answered".
 */
import type { ServerResponse } from 'node:http';

/** Calls `settle` once, when the outcome of `res` is known (see the file comment). */
export function onResponseOutcome(res: ServerResponse, settle: () => void, answered: (res: ServerResponse) => boolean = endedByApp): void {
  let settled = false;
  const once = (): void => {
    if (settled) return;
    settled = true;
    settle();
  };
  res.once('finish', once);
  res.once('close', () => {
    if (settled) return;
    if (answered(res)) return once();
    // The client left while the handler still runs: its outcome comes when it ends the response.
    const end = res.end;
    res.end = function endAfterClientLeft(this: ServerResponse, ...args: unknown[]) {
      const result = (end as (...a: unknown[]) => ServerResponse).apply(this, args);
      once();
      return result;
    } as typeof res.end;
  });
}

/** Ended by the app, but the socket was gone before the last byte: the status is known. */
function endedByApp(res: ServerResponse): boolean {
  return res.writableEnded;
}
