/**
 * `berth pull [--platform p] [--no-unpack] REF`: fetch an image into the content store and record
 * it, then unpack it into the configured snapshotter (layers are applied while later ones still
 * download) unless `--no-unpack`. Progress bars (cli-progress) on a TTY, one plain line per blob
 * otherwise; the result line (`NAME DIGEST`) goes to stdout.
 */
import type { PullEvent, PullOptions } from '../images/pull.ts';
import type { LayerEvent } from '../images/unpack.ts';
import { unpackSettingsFromConfig } from '../diff/layer-applier.ts';
import type { Snapshotter } from '../snapshots/snapshotter.ts';
import type { SingleBar } from 'cli-progress';
import type { RegisterVerb } from './verbs.ts';
import { formatBytes } from '../format-bytes.ts';
import { shortDigest } from './image-format.ts';

const PLAIN_PROGRESS_EVERY_MS = 10_000;

interface PullFlags {
  platform?: string;
  unpack: boolean;
}

/** Renders pull events as bars on a TTY, as lines otherwise. */
/** `layer 0 sha256:…: applied 195.3 MiB in 1.31 s (native)`: what each layer's unpack took, and by which code. */
function appliedLine(e: LayerEvent, digest: string, how: string): string {
  return `layer ${e.index} ${digest}: applied ${formatBytes(e.bytes ?? 0)} in ${((e.ms ?? 0) / 1000).toFixed(2)} s (${how})\n`;
}

export async function progressRenderer(
  stream: NodeJS.WriteStream,
): Promise<{ onEvent(e: PullEvent): void; onLayer(e: LayerEvent, how: string): void; stop(): void }> {
  if (stream.isTTY) {
    const { default: cliProgress } = await import('cli-progress');
    const multi = new cliProgress.MultiBar(
      {
        stream,
        format: ' {id} [{bar}] {percentage}% | {done}/{size} {note}',
        barsize: 30,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        fps: 10,
        autopadding: true,
        formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? formatBytes(v) : String(v)),
      },
      cliProgress.Presets.shades_classic,
    );
    const bars = new Map<string, SingleBar>();
    let stopped = false;
    return {
      onEvent(e) {
        if (e.type === 'blob-start') {
          bars.set(e.digest, multi.create(e.total, 0, { id: shortDigest(e.digest), done: formatBytes(0), size: formatBytes(e.total), note: '' }));
        } else if (e.type === 'blob-progress') {
          bars.get(e.digest)?.update(e.offset, { done: formatBytes(e.offset) });
        } else if (e.type === 'blob-done') {
          const bar = bars.get(e.digest);
          const note = e.skipped ? 'already present' : e.resumedFrom > 0 ? `resumed at ${formatBytes(e.resumedFrom)}` : 'done';
          if (bar) bar.update(bar.getTotal(), { done: formatBytes(bar.getTotal()), note });
          else multi.log(`${shortDigest(e.digest)} ${note}\n`);
        }
      },
      onLayer(e, how) {
        if (e.state === 'applied') multi.log(appliedLine(e, shortDigest(e.digest), how));
      },
      stop: () => {
        if (stopped) return;
        stopped = true;
        multi.stop();
      },
    };
  }
  // Plain lines (logs, pipes): one per blob when it is done, and a progress line per blob every
  // 10 s while it downloads, so a slow pull still says what it is doing.
  const lastLine = new Map<string, number>();
  return {
    onEvent(e) {
      if (e.type === 'blob-start') lastLine.set(e.digest, Date.now());
      else if (e.type === 'blob-progress') {
        const now = Date.now();
        if (now - (lastLine.get(e.digest) ?? now) >= PLAIN_PROGRESS_EVERY_MS) {
          lastLine.set(e.digest, now);
          stream.write(`${e.digest}: ${formatBytes(e.offset)} of ${formatBytes(e.total)}\n`);
        }
      } else if (e.type === 'resolved') stream.write(`resolved ${e.name} to ${e.digest}\n`);
      else if (e.type === 'manifest') stream.write(`platform ${e.platform}: ${e.layers.length} layers, ${formatBytes(e.totalBytes)}\n`);
      else if (e.type === 'blob-done') {
        const what = e.skipped ? 'already present' : `fetched ${formatBytes(e.transferred)}${e.resumedFrom > 0 ? ` (resumed at byte ${e.resumedFrom})` : ''}`;
        stream.write(`layer ${e.index ?? ''} ${e.digest}: ${what}\n`);
      }
    },
    onLayer(e, how) {
      if (e.state === 'applied') stream.write(appliedLine(e, e.digest, how));
    },
    stop() {},
  };
}

export const register: RegisterVerb = (program, run) => {
  program
    .command('pull')
    .description('fetch an image from a registry into the content store and unpack it')
    .argument('<ref>', 'image reference, e.g. alpine, 127.0.0.1:5000/busybox:latest, name@sha256:…')
    .option('--platform <os/arch[/variant]>', 'platform to pull (default: config pull.platform, else the host)')
    .option('--no-unpack', 'only fetch; do not unpack into snapshots')
    .action(
      run(async (ctx, ref: string, flags: PullFlags) => {
        // Loaded on use: a CLI that imports every verb's dependencies up front pays for them in
        // start-up time and peak RSS on every command.
        const [{ pull }, { RegistryClient }, { openImageStores }] = await Promise.all([
          import('../images/pull.ts'),
          import('../remotes/registry.ts'),
          import('./stores.ts'),
        ]);
        const stores = await openImageStores(ctx);
        // The unpacker and the snapshotters are loaded only to unpack: --no-unpack stays lean.
        let snapshotter: Snapshotter | undefined;
        let unpack: PullOptions['unpack'];
        const progress = await progressRenderer(process.stderr);
        if (flags.unpack) {
          const [{ pullUnpacker }, { openSnapshotter }] = await Promise.all([import('../images/unpack.ts'), import('../snapshots/select.ts')]);
          snapshotter = await openSnapshotter(ctx.config.root, ctx.config.snapshotter, { signal: ctx.signal, recover: true });
          const settings = await unpackSettingsFromConfig(ctx.config, { warn: (msg) => ctx.log.warn(msg), signal: ctx.signal });
          unpack = pullUnpacker(snapshotter, { ...settings, onLayer: (e) => progress.onLayer(e, settings.applier.path) });
        }
        const client = new RegistryClient({ config: ctx.config, log: ctx.log });
        try {
          const result = await pull({
            ref,
            platform: flags.platform,
            config: ctx.config,
            log: ctx.log,
            store: stores.store,
            metadata: stores.metadata,
            client,
            signal: ctx.signal,
            onProgress: (e) => progress.onEvent(e),
            unpack,
          });
          progress.stop();
          ctx.out.write(`${result.record.name} ${result.record.target.digest}\n`);
        } finally {
          progress.stop();
          await client.close();
          await snapshotter?.close();
          stores.close();
        }
      }),
    );
};
