/** `berth logs NAME [-f] [--tail N]`: a container's output (stdout and stderr, as written), across rotated files. */
import { invalidArgument } from '../errors.ts';
import { followLog, readLogAll, readLogTailAt } from '../runtime/logs.ts';
import { Runtime } from '../runtime/runtime.ts';
import type { RegisterVerb } from './verbs.ts';

export const register: RegisterVerb = (program, run) => {
  program
    .command('logs')
    .description("print a container's logs")
    .argument('<name>', 'container name')
    .option('-f, --follow', 'keep printing new output (across log rotations) until the task exits or Ctrl-C')
    .option('--tail <n>', 'only the last N lines')
    .action(
      run(async (ctx, name: string, flags: { follow?: boolean; tail?: string }) => {
        let tail: number | undefined;
        if (flags.tail !== undefined) {
          tail = Number(flags.tail);
          if (!Number.isInteger(tail) || tail < 0) throw invalidArgument(`--tail: "${flags.tail}" is not a number of lines`);
        }
        const rt = Runtime.forReading({ root: ctx.config.root, binary: ctx.config.runtime.binary });
        await rt.readRecord(name); // NotFound names the container
        const dir = rt.containerDir(name);
        const write = async (b: Buffer) => {
          if (!ctx.out.write(b)) await new Promise((r) => ctx.out.once('drain', r));
        };
        let logOffset: number;
        if (tail === undefined) {
          const all = readLogAll(dir);
          for await (const chunk of all.chunks) await write(chunk);
          logOffset = all.offset();
        } else {
          const t = await readLogTailAt(dir, tail);
          await write(t.data);
          logOffset = t.logOffset;
        }
        if (!flags.follow) return;
        const done = async () => {
          const st = await rt.status(name).catch(() => undefined);
          return !st || (st.state !== 'running' && st.state !== 'unknown' && !(st.state === 'created' && st.detail));
        };
        for await (const chunk of followLog(dir, { fromOffset: logOffset, signal: ctx.signal, done })) await write(chunk);
      }),
    );
};
