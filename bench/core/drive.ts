/** Runs `concurrency` callers of `op` back to back until the deadline; counts operations and failures. */
export interface DriveResult {
  ops: number;
  failures: number;
  seconds: number;
}

/** One operation of caller `caller`; resolves false (or rejects) when it failed. */
export type Operation = (caller: number) => Promise<boolean>;

export async function drive(op: Operation, concurrency: number, seconds: number): Promise<DriveResult> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let ops = 0;
  let failures = 0;
  const caller = async (id: number) => {
    while (performance.now() < deadline) {
      const ok = await op(id).catch(() => false);
      ops++;
      if (!ok) failures++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, id) => caller(id)));
  return { ops, failures, seconds: (performance.now() - started) / 1000 };
}
