/**
 * The health probes of the containers a turn left running, for the daemon and `berth apply`: after
 * each turn, every desired container whose task runs and that has a check (the manifest's, else its
 * image's HEALTHCHECK) is watched by a HealthMonitor; the rest are not. The verdicts feed the
 * rollout judgement (an unhealthy new container rolls its generation back) and the plan (an
 * unhealthy `Always` container is restarted with back-off).
 */
import type { DesiredState } from '../manifest/types.ts';
import { netnsPath } from '../network/paths.ts';
import { parseImageConfig, parseManifest } from '../oci/types.ts';
import type { HealthState } from '../runtime/health/health-state.ts';
import { healthcheckProblem, resolveHealthcheck, type Healthcheck } from '../runtime/health/healthcheck.ts';
import { HealthMonitor } from '../runtime/health/monitor.ts';
import type { ReconcileDeps } from './deps.ts';
import type { HealthVerdict } from './rollout.ts';
import type { Step } from './types.ts';

export class ContainerProbes {
  private readonly deps: ReconcileDeps;
  private readonly monitor: HealthMonitor;
  /** The image config's HEALTHCHECK by manifest digest (undefined: none), read once per image. */
  private readonly imageChecks = new Map<string, Healthcheck | undefined>();
  private readonly warned = new Set<string>();

  constructor(deps: ReconcileDeps, onChange: (name: string, state: HealthState) => void) {
    this.deps = deps;
    this.monitor = new HealthMonitor({ runtime: deps.runtime, log: deps.log, onChange });
  }

  /** Watch what runs with a check; stop watching the rest. */
  async sync(desired: DesiredState | undefined, signal: AbortSignal): Promise<void> {
    const wanted = new Set<string>();
    const statuses = new Map((await this.deps.runtime.list()).map((s) => [s.name, s] as const));
    for (const doc of desired?.containers ?? []) {
      const name = doc.metadata.name;
      const st = statuses.get(name);
      if (st?.state !== 'running' || st.startedAtMs === undefined) continue;
      const check = doc.spec.healthcheck ? resolveHealthcheck(doc.spec.healthcheck, undefined) : await this.imageCheck(st.record.imageDigest, signal);
      if (!check) continue;
      const netns = doc.spec.networks?.length ? netnsPath(this.deps.config.root, name) : undefined;
      const problem = healthcheckProblem(check, doc.spec.network, netns !== undefined);
      if (problem) {
        if (!this.warned.has(name)) this.deps.log.warn({ container: name }, `${name}: health check not run: ${problem}`);
        this.warned.add(name);
        continue;
      }
      wanted.add(name);
      this.monitor.watch(name, check, st.startedAtMs, netns);
    }
    for (const name of this.monitor.names()) if (!wanted.has(name)) this.monitor.unwatch(name);
  }

  /**
   * Whether a wait among `steps` is for dependencies' health checks that have yet to decide (each
   * one watched and not unhealthy), after the probes were synced: `berth apply` turns again for them.
   */
  async deciding(desired: DesiredState | undefined, steps: Step[], signal: AbortSignal): Promise<boolean> {
    const waits = steps.flatMap((s) => (s.kind === 'wait' && s.awaitsHealth?.length ? [s.awaitsHealth] : []));
    if (waits.length === 0) return false;
    await this.sync(desired, signal);
    const canPass = (d: string) => {
      const s = this.monitor.get(d);
      return s !== undefined && s.status !== 'unhealthy';
    };
    return waits.some((deps) => deps.every(canPass));
  }

  verdict(name: string): { status: HealthVerdict; output?: string; since: number } | undefined {
    const s = this.monitor.get(name);
    return s && { status: s.status, output: s.output, since: s.changedAt };
  }

  close(): Promise<void> {
    return this.monitor.close();
  }

  private async imageCheck(manifestDigest: string, signal: AbortSignal): Promise<Healthcheck | undefined> {
    if (this.imageChecks.has(manifestDigest)) return this.imageChecks.get(manifestDigest);
    let check: Healthcheck | undefined;
    try {
      const manifest = parseManifest(await this.deps.content.readBlob(manifestDigest, signal), `manifest ${manifestDigest}`);
      const config = parseImageConfig(await this.deps.content.readBlob(manifest.config.digest, signal), `config ${manifest.config.digest}`);
      check = resolveHealthcheck(undefined, config as { config?: { Healthcheck?: null } });
    } catch (err) {
      this.deps.log.warn({ err, image: manifestDigest }, 'cannot read the image config for its HEALTHCHECK');
    }
    this.imageChecks.set(manifestDigest, check);
    return check;
  }
}
