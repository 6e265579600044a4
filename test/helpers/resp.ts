/**
 * A minimal RESP2 client for the harness itself: one command per TCP connection, a hard time
 * bound, no retries, no offline queue. It probes servers that may be starting, stopped or
 * SIGSTOPped, where a real client's reconnect logic would blur what we want to observe.
 * Replies supported: simple string, error, integer, bulk string (arrays are not needed here).
 */
import { connect } from 'node:net';

/** An error reply (`-ERR …`) from the server. */
export class RespErrorReply extends Error {
  override readonly name = 'RespErrorReply';
}

type Parsed = { done: false } | { done: true; value: string | null } | { done: true; error: string };

/** Sends `args` as one command to 127.0.0.1:`port` and resolves with the reply as text. */
export function sendCommand(port: number, args: readonly string[], timeoutMs: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = Buffer.alloc(0);
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      outcome();
    };
    const timer = setTimeout(
      () => settle(() => reject(new Error(`no reply from 127.0.0.1:${port} to ${args[0]} within ${timeoutMs} ms`))),
      timeoutMs,
    );
    socket.on('connect', () => socket.write(encodeCommand(args)));
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      const reply = parseReply(buffer);
      if (!reply.done) return;
      if ('error' in reply) settle(() => reject(new RespErrorReply(reply.error)));
      else settle(() => resolve(reply.value));
    });
    socket.on('error', (err) => settle(() => reject(err)));
    socket.on('close', () => settle(() => reject(new Error(`127.0.0.1:${port} closed the connection before replying to ${args[0]}`))));
  });
}

function encodeCommand(args: readonly string[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return Buffer.from(parts.join(''));
}

function parseReply(buffer: Buffer): Parsed {
  const lineEnd = buffer.indexOf('\r\n');
  if (lineEnd < 0) return { done: false };
  const type = String.fromCharCode(buffer[0]!);
  const line = buffer.subarray(1, lineEnd).toString();
  switch (type) {
    case '+':
    case ':':
      return { done: true, value: line };
    case '-':
      return { done: true, error: line };
    case '$': {
      const length = Number(line);
      if (length < 0) return { done: true, value: null };
      const start = lineEnd + 2;
      if (buffer.length < start + length + 2) return { done: false };
      return { done: true, value: buffer.subarray(start, start + length).toString() };
    }
    default:
      return { done: true, error: `unsupported reply type ${JSON.stringify(type)}` };
  }
}

/** Parses `INFO` / `CLUSTER INFO` text into a field map. */
export function parseInfo(text: string | null): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of (text ?? '').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}
