/** Compose files written into a temp directory and read the way the loader reads them. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readCompose, type ComposeDocuments } from '../../src/compose/read.ts';
import { formatProblem } from '../../src/manifest/problems.ts';
import { createDocumentValidator, type DocumentValidator } from '../../src/manifest/schema.ts';

export class ComposeDirs {
  private base = '';
  private n = 0;
  /** berth's own document validator, for loading the directories made here. */
  validator!: DocumentValidator;

  async setUp(): Promise<void> {
    this.base = await mkdtemp(join(tmpdir(), 'berth-compose-'));
    this.validator = await createDocumentValidator();
  }

  async tearDown(): Promise<void> {
    if (this.base) await rm(this.base, { recursive: true, force: true });
  }

  /** Writes `files` (name → text) into a fresh directory and returns it. */
  async dir(files: Record<string, string>): Promise<string> {
    const dir = join(this.base, `set-${++this.n}`);
    await mkdir(dir, { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), text);
    }
    return dir;
  }

  /** Reads `compose.yaml` from a fresh directory holding `files`; `env` stands for berth's environment. */
  async read(
    files: Record<string, string>,
    env: Record<string, string> = {},
  ): Promise<{ dir: string; result: ComposeDocuments; problems: string[]; notes: string[] }> {
    const dir = await this.dir(files);
    const file = join(dir, 'compose.yaml');
    const result = await readCompose(file, files['compose.yaml']!, { env });
    const strip = (s: string) => s.slice(dir.length + 1);
    return { dir, result, problems: result.problems.map((p) => strip(formatProblem(p))), notes: result.notes.map((p) => strip(formatProblem(p))) };
  }
}
