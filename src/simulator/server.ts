/**
 * The simulator's HTTP server: node:http on loopback, tracking every socket so `stats()`
 * can report open connections and `close()` can end them all.
 */
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createContext } from './context.ts';
import type { FaultRuleInput } from './options.ts';
import { simulatorOptionsSchema, type SimulatorOptions } from './options.ts';
import { dispatch } from './routes.ts';
import type { SimulatorStats } from './stats.ts';

/** A running simulator. */
export interface Simulator {
  /** `http://127.0.0.1:PORT`, no trailing slash. The OpenAI base URL is `${url}/v1`. */
  readonly url: string;
  readonly port: number;
  /** Counters and open connections, read in process (no connection of its own). */
  stats(): SimulatorStats;
  /** Replaces the runtime faults of one model, or of all models when `model` is omitted; `[]` clears. */
  setFaults(input: { model?: string; faults: readonly FaultRuleInput[] }): void;
  /** Clears stats, limit windows, runtime faults and fault counters. */
  reset(): void;
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Starts the provider simulator. Options are validated with `simulatorOptionsSchema` (it
 * throws on invalid options) and frozen.
 *
 * @example
 * const simulator = await startSimulator({ models: { 'gpt-4o-mini': { limits: { rpm: 600 } } } });
 * const openai = new OpenAI({ baseURL: `${simulator.url}/v1`, apiKey: 'unused' });
 * await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] });
 * await simulator.close();
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const parsed = deepFreeze(simulatorOptionsSchema.parse(options));
  const context = createContext(parsed);
  const sockets = new Set<Socket>();
  const reset = () => {
    context.stats.reset();
    context.limiter.reset();
    context.faults.clear();
  };
  const server = createServer({ noDelay: true, keepAlive: true }, (request, response) => {
    void dispatch({ context, request, response, openConnections: () => sockets.size, reset });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(parsed.port, parsed.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    stats: () => context.stats.snapshot({ openConnections: sockets.size }),
    setFaults: (input) => context.faults.set(input),
    reset,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
