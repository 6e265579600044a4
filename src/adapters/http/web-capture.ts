/**
 * Capturing a web `Response` body for replay (frameworks built on the Fetch API, e.g. Hono), the
 * web-stream twin of `captureStream` in idempotency-capture.ts: the body is copied as it flows, up
 * to `maxBodyBytes` (past it the copy is dropped and the record keeps `body: null`), so a streamed
 * or endless body is never buffered before it is sent.
 */
import { BoundedBody } from './idempotency-capture.js';

/**
 * A stream that passes `source` through and copies it. When the source ends, `onEnd(body)` runs
 * BEFORE the stream closes (the record is completed before the response is), so a client that got
 * the whole response and retries finds the record. If the source fails or the reader cancels
 * first (the client left), `onFail()` runs instead. Exactly one of the two runs; neither may reject.
 */
export function captureWebStream(
  source: ReadableStream<Uint8Array>,
  maxBodyBytes: number,
  onEnd: (body: Buffer | null) => Promise<void>,
  onFail: () => void,
): ReadableStream<Uint8Array> {
  const body = new BoundedBody(maxBodyBytes);
  const reader = source.getReader();
  let settled = false;
  const fail = (): void => {
    if (settled) return;
    settled = true;
    onFail();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let result: Awaited<ReturnType<typeof reader.read>>;
      try {
        result = await reader.read();
      } catch (err) {
        fail();
        controller.error(err);
        return;
      }
      if (result.done) {
        settled = true;
        await onEnd(body.result()).catch(() => undefined);
        controller.close();
        return;
      }
      body.add(result.value);
      controller.enqueue(result.value);
    },
    cancel(reason) {
      fail();
      return reader.cancel(reason);
    },
  });
}
