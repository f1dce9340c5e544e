/**
 * Whether a process exists (signal 0). EPERM means it exists but belongs to someone else. Used to
 * take over locks and in-progress work whose owner died (a `kill -9`'d berth never wedges the next).
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: any) {
    return err?.code === 'EPERM';
  }
}
