/**
 * The redaction hook for stored payloads: before a request/response pair enters the ledger,
 * every string in it passes through the configured rules (e.g. e-mail addresses, card numbers,
 * internal hostnames). Only payloads of keys that opted in to storage are stored at all.
 */
import { z } from 'zod';

export const redactionRuleSchema = z
  .object({
    /** A JavaScript regular expression, matched globally. */
    pattern: z.string().min(1).refine(
      (pattern) => {
        try {
          new RegExp(pattern, 'g');
          return true;
        } catch {
          return false;
        }
      },
      { error: 'expected a valid regular expression' },
    ),
    /** Regular expression flags besides `g` (e.g. `i`). */
    flags: z.string().regex(/^[imsu]*$/, { error: 'expected flags among i, m, s, u' }).default(''),
    replacement: z.string().default('[REDACTED]'),
  })
  .strict();
export type RedactionRule = z.infer<typeof redactionRuleSchema>;

export type Redact = (payload: { request: unknown; response: unknown }) => { request: unknown; response: unknown };

/**
 * @example
 * const redact = createRedactor([{ pattern: '[\\w.+-]+@[\\w-]+\\.[\\w.]+', flags: '', replacement: '[EMAIL]' }]);
 * redact({ request: { messages: [{ role: 'user', content: 'mail a@b.co' }] }, response: null });
 * // → { request: { messages: [{ role: 'user', content: 'mail [EMAIL]' }] }, response: null }
 */
export function createRedactor(rules: readonly RedactionRule[]): Redact {
  if (rules.length === 0) return (payload) => payload;
  const compiled = rules.map((rule) => ({ expression: new RegExp(rule.pattern, `g${rule.flags}`), replacement: rule.replacement }));
  const redactValue = (value: unknown): unknown => {
    if (typeof value === 'string') {
      return compiled.reduce((text, rule) => text.replace(rule.expression, rule.replacement), value);
    }
    if (Array.isArray(value)) return value.map(redactValue);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactValue(item)]));
    }
    return value;
  };
  return (payload) => ({ request: redactValue(payload.request), response: redactValue(payload.response) });
}
