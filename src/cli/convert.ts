/**
 * `berth convert compose.yaml`: prints the berth documents a Compose file becomes (the same ones
 * berth reads when the file sits in the manifests directory), so a user can take them over and edit
 * them. What works differently in berth is said in comments above each document and as notes on
 * stderr; a file berth cannot honour prints every problem as file:line:col and exits 1.
 */
import { readFile, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { Document, isMap, isScalar, isSeq, visit, type Node } from 'yaml';
import { readCompose } from '../compose/read.ts';
import { invalidArgument } from '../errors.ts';
import { DEFAULT_MANIFEST_LIMITS, parseManifestSources } from '../manifest/load.ts';
import { formatProblem, sortProblems } from '../manifest/problems.ts';
import { createDocumentValidator } from '../manifest/schema.ts';
import { ExitCode } from './context.ts';
import type { RegisterVerb } from './verbs.ts';

export const register: RegisterVerb = (program: Command, run) => {
  program
    .command('convert')
    .description('print the berth documents a Compose file becomes (compose.yaml, docker-compose.yml)')
    .argument('<file>', 'the Compose file')
    .action(
      run(async (ctx, file: string) => {
        const st = await stat(file);
        if (st.size > DEFAULT_MANIFEST_LIMITS.fileBytes)
          throw invalidArgument(`${file}: bigger than a manifest file may be (${DEFAULT_MANIFEST_LIMITS.fileBytes} bytes)`, { place: { file } });
        const text = await readFile(file, { encoding: 'utf8', signal: ctx.signal });
        const compose = await readCompose(file, text, { signal: ctx.signal });
        // The documents go through the loader's own checks too: what convert prints, berth accepts.
        const checked = parseManifestSources([{ file, text, compose }], await createDocumentValidator(ctx.signal));
        if (!checked.state) {
          for (const p of checked.problems) process.stderr.write(`${formatProblem(p)}\n`);
          const n = checked.problems.length;
          process.stderr.write(`${n} problem${n === 1 ? '' : 's'} in ${file}\n`);
          throw new ExitCode(1);
        }
        for (const n of sortProblems(compose.notes)) process.stderr.write(`${formatProblem({ ...n, message: `note: ${n.message}` })}\n`);
        const docs = compose.drafts.map((d, i) => {
          const doc = new Document(d.value);
          // Short lists of words and list entries of a few words on one line (`args: [-c, /app.conf]`,
          // `- {type: volume, name: data, target: /data}`), as berth's examples write them.
          const short = (nodes: unknown[]) =>
            nodes.every(isScalar) && nodes.reduce<number>((n, i) => n + String((i as { value: unknown }).value).length + 2, 0) <= 64;
          visit(doc, {
            Seq(_, seq) {
              if (short(seq.items)) seq.flow = true;
            },
            Map(_, map, path) {
              const inList = isSeq(path[path.length - 1] as Node);
              if (inList && isMap(map) && short(map.items.flatMap((p) => [p.key, p.value]))) map.flow = true;
            },
          });
          const head = i === 0 ? [` berth documents made from ${file} by berth convert`] : [];
          const lines = [...head, ...d.notes.map((n) => ` note: ${n}`)];
          if (lines.length > 0) doc.commentBefore = lines.join('\n');
          return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
        });
        ctx.out.write(docs.join('---\n'));
      }),
    );
};
