/**
 * A webhook receiver for tests: a node:http server on a free loopback port that records each POST
 * (parsed JSON, headers) and answers what the test says (200 by default). It can be closed and
 * opened again on the same port, as a receiver that went down and came back.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { freePort } from '../helpers/registry.ts';

export interface Received {
  body: any;
  headers: IncomingHttpHeaders;
}

export class Receiver {
  readonly received: Received[] = [];
  /** The status of the next answers (and how many requests were answered with something else). */
  answer: (body: any) => number = () => 200;
  readonly port: number;
  private server: Server | undefined;
  private constructor(port: number) {
    this.port = port;
  }

  static async start(): Promise<Receiver> {
    const r = new Receiver(await freePort());
    await r.open();
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** Events only (`id` present), in the order received. */
  ids(): number[] {
    return this.received.filter((r) => r.body.id !== undefined).map((r) => r.body.id);
  }

  async open(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const status = this.answer(body);
        if (status >= 200 && status < 300) this.received.push({ body, headers: req.headers });
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : `no (${status})`);
      });
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  /** Down: connections are refused until `open()`. */
  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
