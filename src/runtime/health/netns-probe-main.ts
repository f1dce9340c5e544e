/**
 * The probe ./netns-probe.ts runs inside a container's network namespace: argv[2] is the check
 * (JSON); the result of probing it as from the host goes to stdout as JSON.
 */
import type { Healthcheck } from './healthcheck.ts';
import { probeOnce } from './probe.ts';

const check = JSON.parse(process.argv[2]!) as Healthcheck;
const result = await probeOnce(
  check,
  { name: 'probe', network: 'host', exec: () => Promise.reject(new Error('exec checks run in the container')) },
  new AbortController().signal,
);
process.stdout.write(JSON.stringify(result));
