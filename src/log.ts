/**
 * Seed's log: one line per event on stderr, `level message {fields}`. Small on purpose; the
 * request path does not log (metrics and the ledger carry per-call facts).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  (level: LogLevel, message: string, fields?: unknown): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(input: { level?: LogLevel; write?: (line: string) => void } = {}): Logger {
  const threshold = ORDER[input.level ?? 'info'];
  const write = input.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  return (level, message, fields) => {
    if (ORDER[level] < threshold) return;
    write(`seed ${level} ${message}${fields === undefined ? '' : ` ${describe(fields)}`}`);
  };
}

function describe(fields: unknown): string {
  if (fields instanceof Error) return fields.stack ?? fields.message;
  try {
    return JSON.stringify(fields, (_key, value: unknown) =>
      value instanceof Error ? { name: value.name, message: value.message } : value,
    );
  } catch {
    return String(fields);
  }
}

export const silentLogger: Logger = () => undefined;
