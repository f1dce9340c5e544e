/** Whether anything exists at `path` (a missing path, or one we may not see, is false). */
import { access } from 'node:fs/promises';

export function pathExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
