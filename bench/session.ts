/**
 * What every bench entry point sets up first: cleanup on any exit, CPU pinning (this driver and
 * Redis on CPU 1, the measured Node process alone on CPU 0), the throwaway redis-server.
 */
import { startBenchRedis, type BenchRedis } from './sys/redis-server.js';
import { describeMachine, type Machine } from './sys/machine.js';
import { installSignalHandlers, pinProcess, pinningAvailable } from './sys/processes.js';

export interface BenchSession {
  machine: Machine;
  redis: BenchRedis;
  pinned: boolean;
  /** CPU of the measured Node process (HTTP server, core worker). */
  serverCpu: number | undefined;
  /** CPU of the load generator, this driver and redis-server. */
  loadCpu: number | undefined;
}

const SERVER_CPU = 0;
const LOAD_CPU = 1;

export async function openSession(): Promise<BenchSession> {
  installSignalHandlers();
  const machine = describeMachine();
  const pinned = pinningAvailable(machine.cpus);
  if (pinned) pinProcess(process.pid, LOAD_CPU);
  else console.error('warning: no CPU pinning (needs taskset and ≥ 2 CPUs); figures will be noisier');
  const redis = await startBenchRedis(pinned ? LOAD_CPU : undefined);
  return { machine, redis, pinned, serverCpu: pinned ? SERVER_CPU : undefined, loadCpu: pinned ? LOAD_CPU : undefined };
}
