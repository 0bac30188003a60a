/** Test servers bind to loopback only, on an ephemeral port. */
import type { Server } from 'node:net';

/** Listens on 127.0.0.1 at a free port; resolves with the origin, `http://127.0.0.1:PORT`. */
export async function listenOnLoopback(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the server has no TCP address');
  return `http://127.0.0.1:${address.port}`;
}
