/** One row per HTTP case: medians over rounds, ratios and added CPU taken against the bare framework of the same round. */
import { bareCaseOf, type HttpCase } from '../http/cases.js';
import type { HttpSample } from '../http/measure.js';
import { median } from './stats.js';

export interface HttpRow {
  c: HttpCase;
  rps: number;
  /** case req/s ÷ bare req/s, same round. */
  ratio: number;
  p50Ms: number;
  p99Ms: number;
  nodeCpuUs: number;
  /** case Node µs/req − bare Node µs/req, same round. */
  addedUs: number;
  redisCpuUs: number;
  scriptCalls: number;
  redisCommands: number;
  refusedShare: number;
  errors: number;
}

export function summarizeHttp(cases: readonly HttpCase[], samples: readonly HttpSample[]): HttpRow[] {
  const sampleOf = (id: string, round: number) => samples.find((s) => s.caseId === id && s.round === round);
  return cases.map((c) => {
    const own = samples.filter((s) => s.caseId === c.id);
    const paired = own.flatMap((s) => {
      const bare = sampleOf(bareCaseOf(c).id, s.round);
      return bare ? [{ s, bare }] : [];
    });
    const m = (pick: (s: HttpSample) => number) => median(own.map(pick));
    return {
      c,
      rps: m((s) => s.rps),
      ratio: median(paired.map(({ s, bare }) => s.rps / bare.rps)),
      p50Ms: m((s) => s.p50Ms),
      p99Ms: m((s) => s.p99Ms),
      nodeCpuUs: m((s) => s.nodeCpuUs),
      addedUs: median(paired.map(({ s, bare }) => s.nodeCpuUs - bare.nodeCpuUs)),
      redisCpuUs: m((s) => s.redis.cpuUs),
      scriptCalls: m((s) => s.redis.scriptCalls),
      redisCommands: m((s) => s.redis.commands),
      refusedShare: m((s) => s.refusedShare),
      errors: own.reduce((sum, s) => sum + s.errors, 0),
    };
  });
}
