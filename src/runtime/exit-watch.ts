/**
 * Noticing task exits as they happen: berth-shim writes `<containers>/<name>/exit.json`.
 *
 * Not `fs.watch(dir, {recursive: true})`: on Linux, Node implements it by watching every
 * subdirectory, and each container dir holds its mounted rootfs, so that would put an inotify
 * watch on every directory of every container's filesystem (and wake berth on every file the
 * containers touch). Instead: one watch on the containers dir (containers come and go) and one on
 * each container dir (not recursive). Events are hints: callers still poll as a fallback.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { EXIT_FILE } from './state.ts';

export interface ExitWatcher {
  close(): void;
}

export function watchExits(containersDir: string, onExit: (name: string) => void, onError?: (err: unknown) => void): ExitWatcher {
  const perContainer = new Map<string, FSWatcher>();
  let closed = false;

  const add = (name: string) => {
    if (closed || perContainer.has(name)) return;
    try {
      const w = watch(path.join(containersDir, name), (_event, file) => {
        if (file && String(file) === EXIT_FILE) onExit(name);
      });
      w.on('error', () => remove(name)); // the container dir was removed
      perContainer.set(name, w);
    } catch {
      // not a directory, or removed already
    }
  };
  const remove = (name: string) => {
    perContainer.get(name)?.close();
    perContainer.delete(name);
  };

  let top: FSWatcher | undefined;
  try {
    top = watch(containersDir, (_event, file) => {
      if (!file) return;
      const name = String(file);
      // A new container dir, or one removed: (re)evaluate it.
      remove(name);
      add(name);
    });
    top.on('error', (err) => onError?.(err));
  } catch (err) {
    onError?.(err);
  }
  void readdir(containersDir).then(
    (names) => names.forEach(add),
    (err) => onError?.(err),
  );
  return {
    close() {
      closed = true;
      top?.close();
      for (const w of perContainer.values()) w.close();
      perContainer.clear();
    },
  };
}
