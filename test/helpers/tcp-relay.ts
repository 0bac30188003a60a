/**
 * A TCP relay in front of a real service (PostgreSQL, Redis) that a test can break without
 * stopping the shared server:
 * - `cut()` kills every connection and refuses new ones (the service goes away, and says so);
 * - `freeze()` keeps every connection open but carries nothing more either way, and holds new
 *   ones silent: packets dropped without a reset, as after a failover or a firewall change, where
 *   a client hears nothing until its own timeouts;
 * - `restore()` lets new connections through again (frozen ones are reset: they would not come
 *   back either); `restore({ keepFrozen: true })` leaves them frozen, as after a failover, where
 *   the old connections stay black holes until TCP gives up on them (~15 minutes on Linux).
 */
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

export interface TcpRelay {
  port: number;
  cut(): void;
  freeze(): void;
  restore(options?: { keepFrozen?: boolean }): void;
  close(): Promise<void>;
}

export async function startTcpRelay(target: { host: string; port: number }): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  /** Connections frozen and not reset since: a later `restore()` resets them. */
  const frozen = new Set<Socket>();
  let state: 'up' | 'down' | 'frozen' = 'up';
  const track = (socket: Socket, onError: () => void) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', onError);
  };
  const server = createServer((client) => {
    if (state === 'down') {
      client.destroy();
      return;
    }
    if (state === 'frozen') {
      track(client, () => client.destroy());
      client.pause();
      frozen.add(client);
      return;
    }
    const upstream = createConnection(target);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    for (const socket of pair) {
      track(socket, () => {
        client.destroy();
        upstream.destroy();
      });
      socket.on('close', () => pairs.delete(pair));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      state = 'down';
      for (const socket of sockets) socket.destroy();
    },
    freeze() {
      state = 'frozen';
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
        frozen.add(client).add(upstream);
      }
    },
    restore({ keepFrozen = false } = {}) {
      if (!keepFrozen) {
        for (const socket of frozen) socket.destroy();
        frozen.clear();
      }
      state = 'up';
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
