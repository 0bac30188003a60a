// The Portkey gateway (@portkey-ai/gateway), unchanged, bound to 127.0.0.1 on an ephemeral port.
// Its start-server.js calls @hono/node-server's serve({ fetch, port }) with no hostname (all
// interfaces) and does not export its app, so this wrapper pins the address at listen() time,
// then imports the published build as is.
import http from 'node:http';

const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function listenOnLoopback(...listenArguments) {
  const callback = listenArguments.find((argument) => typeof argument === 'function');
  this.once('listening', () => {
    const address = this.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    process.stdout.write(`${JSON.stringify({ ready: true, url: `http://127.0.0.1:${port}` })}\n`);
  });
  return listen.call(this, 0, '127.0.0.1', callback);
};
console.clear = () => undefined;
process.argv.push('--headless');
const stop = () => process.exit(0);
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
await import('@portkey-ai/gateway/build/start-server.js');
