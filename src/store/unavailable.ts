/**
 * Telling a store that is unavailable from a statement that failed: the first is worth a retry
 * (503), the second is Seed's own failure (500). pg reports a lost or refused connection as a
 * Node socket error (with a `code`) or, for what the pool and client notice themselves, only by
 * message; the server's own refusals carry a SQLSTATE.
 */

/** Socket errors of a connection that was refused, lost or timed out. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/**
 * SQLSTATE: class 08 (connection exception), 53300 (too many connections), 57P01–57P03 (the
 * server shutting down, crashed, or not yet accepting connections).
 */
const POSTGRES_UNAVAILABLE = /^(08|53300$|57P0[123]$)/;
/** What pg-pool and pg's client say, without a code, of a connection they lost or could not make. */
const POSTGRES_CONNECTION_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable)/;
/** SQLite: the file locked past the busy timeout, unreadable, unwritable, or the disk full. */
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL)/;

/**
 * Whether `error` says the store could not be reached or did not answer, rather than that a
 * statement was wrong.
 *
 * @example
 * catch (error) { if (isStoreUnavailable(error)) throw new SeedError('store_unavailable', '…'); throw error; }
 */
export function isStoreUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as Error & { code?: unknown }).code;
  if (typeof code === 'string') {
    return NETWORK_CODES.has(code) || POSTGRES_UNAVAILABLE.test(code) || SQLITE_UNAVAILABLE.test(code);
  }
  return POSTGRES_CONNECTION_MESSAGES.test(error.message);
}
