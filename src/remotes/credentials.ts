/**
 * Registry credentials: from berth's config (`registry.hosts."<host>".username/password`), then
 * from a Docker `config.json` (`auths."<host>".auth` = base64 "user:pass", or username/password).
 * Never logged: callers pass them only to the authorizer.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/config.ts';
import { invalidArgument } from '../errors.ts';

export interface Credentials {
  username: string;
  password: string;
  /** An OAuth2 refresh token (`identitytoken` in config.json, from `docker login` on some registries). */
  identityToken?: string;
}

/** Docker's keys for docker.io in config.json. */
const DOCKER_HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];

export class CredentialStore {
  private readonly config: Config;
  private dockerAuths?: Promise<Record<string, any>>;

  constructor(config: Config) {
    this.config = config;
  }

  private async loadDockerConfig(): Promise<Record<string, any>> {
    const file = this.config.registry.dockerConfig;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err: any) {
      if (err?.code === 'ENOENT' || err?.code === 'ENOTDIR' || err?.code === 'EACCES') return {};
      throw err;
    }
    try {
      return JSON.parse(text)?.auths ?? {};
    } catch (err: any) {
      throw invalidArgument(`${file}: not valid JSON: ${err.message}`, { cause: err, place: { file } });
    }
  }

  /** Credentials for a registry host (`docker.io`, `127.0.0.1:5000`), if any are configured. */
  async lookup(host: string): Promise<Credentials | undefined> {
    const hc = this.config.registry.hosts[host];
    if (hc?.username !== undefined) return { username: hc.username, password: hc.password ?? '' };
    this.dockerAuths ??= this.loadDockerConfig();
    const auths = await this.dockerAuths;
    const keys = host === 'docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB_KEYS : [host, `https://${host}`, `http://${host}`];
    for (const k of keys) {
      const e = auths[k];
      if (!e) continue;
      if (typeof e.identitytoken === 'string' && e.identitytoken !== '') {
        const decoded = typeof e.auth === 'string' ? Buffer.from(e.auth, 'base64').toString('utf8') : '';
        return { username: decoded.split(':')[0] || e.username || '<token>', password: '', identityToken: e.identitytoken };
      }
      if (typeof e.auth === 'string' && e.auth !== '') {
        const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        if (i < 0) throw invalidArgument(`${this.config.registry.dockerConfig}: auths."${k}".auth is not base64 of "user:password"`);
        return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
      }
      if (typeof e.username === 'string') return { username: e.username, password: e.password ?? '' };
    }
    return undefined;
  }
}
