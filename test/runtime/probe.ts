/** Test programs for runtime tests: sysprobe (fixtures/sysprobe.c), built static into a rootfs. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SYSPROBE_SOURCE = fileURLToPath(new URL('./fixtures/sysprobe.c', import.meta.url));

/** Builds sysprobe into `<rootfs>/bin/sysprobe`: it prints `call=ok` or `call=<errno name>` for each call named. */
export function installSysprobe(rootfs: string): void {
  execFileSync('cc', ['-O2', '-static', '-o', path.join(rootfs, 'bin/sysprobe'), SYSPROBE_SOURCE]);
}
