/**
 * Child process for the cross-process append test: opens the store at argv[2] and appends
 * argv[3] entries as actor argv[4]. SQLite connections in one process would block each other's
 * event loop (better-sqlite3 waits synchronously), so real concurrency needs processes.
 */
import { createAuditLog } from '../src/audit/index.ts';
import { openStore } from '../src/store/index.ts';

const [url, countText, actor] = process.argv.slice(2);
if (url === undefined || countText === undefined || actor === undefined) throw new Error('usage: audit-worker.ts URL COUNT ACTOR');
const store = await openStore({ url });
const audit = createAuditLog({ store });
for (let index = 0; index < Number(countText); index += 1) {
  await audit.append({ actor, action: 'key.created', subject: `${actor}-${index}` });
}
await store.close();
