/** `berth inspect NAME [--json]`: a container's spec, image digest, snapshot chain, rootfs mount, task and health. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { currentHealth } from '../runtime/health/health-file.ts';
import { logFiles } from '../runtime/logs.ts';
import { Metadata } from '../metadata/metadata.ts';
import { Runtime } from '../runtime/runtime.ts';
import { describeState, mountLine } from './container-format.ts';
import { containerNetworking } from '../network/networks.ts';
import type { RegisterVerb } from './verbs.ts';

export const register: RegisterVerb = (program, run) => {
  program
    .command('inspect')
    .description('show a container in detail: spec, image digest, snapshot chain, rootfs mount, task')
    .argument('<name>', 'container name')
    .option('--json', 'print JSON')
    .action(
      run(async (ctx, name: string, flags: { json?: boolean }) => {
        const rt = Runtime.forReading({ root: ctx.config.root, binary: ctx.config.runtime.binary });
        const s = await rt.status(name);
        const r = s.record;
        const dir = rt.containerDir(name);
        const health = await currentHealth(rt.root, name, s.state === 'running' ? s.startedAtMs : undefined);
        const oci = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8').catch(() => 'null'));
        const view = {
          name,
          state: describeState(s),
          pid: s.state === 'running' ? (s.pid ?? null) : null,
          detail: s.detail ?? null,
          image: { ref: r.imageRef, digest: r.imageDigest },
          labels: oci?.annotations ?? {},
          snapshot: { key: r.snapshotKey, chain: r.snapshotChain },
          rootfs: { path: path.join(dir, 'rootfs'), mounts: r.rootfsMounts.map(mountLine) },
          specHash: r.specHash ?? null,
          spec: appliedSpec(ctx.config.root, name),
          networking: await containerNetworking(ctx.config.root, name),
          process: oci ? { args: oci.process.args, env: oci.process.env, cwd: oci.process.cwd, user: oci.process.user } : null,
          task: r.task ? { id: r.task.id, pid: r.task.pid ?? null, supervisorPid: r.task.shimPid ?? null, startedAt: r.task.startedAt } : null,
          health: health
            ? {
                status: health.status,
                check: health.check,
                failingStreak: health.failingStreak,
                retries: health.retries,
                since: new Date(health.changedAt).toISOString(),
                lastProbeAt: health.lastProbeAt ? new Date(health.lastProbeAt).toISOString() : null,
                lastCode: health.code ?? null,
                lastOutput: health.output,
              }
            : null,
          lastExit: s.exit ? { ...s.exit, startedAt: new Date(s.exit.startedAtMs).toISOString(), exitedAt: new Date(s.exit.exitedAtMs).toISOString() } : null,
          restarts: r.restartCount,
          createdAt: r.createdAt,
          runtime: { binary: r.runtime, root: r.runtimeRoot, cgroup: r.cgroupsPath },
          bundle: dir,
          logs: await logFiles(dir),
        };
        ctx.out.write(flags.json ? `${JSON.stringify(view, null, 2)}\n` : stringify(view, { lineWidth: 0 }));
      }),
    );
};

/** The spec berth applied (the user's intent, kept in metadata.db, not by the runtime); null if none is recorded. */
function appliedSpec(root: string, name: string): unknown {
  const file = path.join(root, 'metadata.db');
  if (!existsSync(file)) return null; // a reader creates no database
  const metadata = Metadata.open(file);
  try {
    return metadata.getContainer(name)?.spec ?? null;
  } finally {
    metadata.close();
  }
}
