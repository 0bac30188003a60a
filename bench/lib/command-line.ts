/**
 * The bench tools' command lines: `parseArgs` (strict: an unknown flag is an error), with
 * `--help` printing the tool's own header comment, where its usage and flags are written once.
 * A wrong flag prints what was wrong and how to ask for help, not a stack trace.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** `parseArgs(config)` for the tool in `file` (its `import.meta.filename`). */
export function parseCommandLine<const Config extends ParseArgsConfig>(file: string, config: Config): ReturnType<typeof parseArgs<Config>> {
  const args = config.args ?? process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(usageOf(file));
    process.exit(0);
  }
  try {
    return parseArgs(config);
  } catch (error) {
    if (!isParseArgsError(error)) throw error;
    process.stderr.write(`${basename(file)}: ${error.message}\nRun it with --help for its flags.\n`);
    process.exit(2);
  }
}

/** The first doc comment of `file`, without its comment marks. */
export function usageOf(file: string): string {
  const match = /\/\*\*([\s\S]*?)\*\//.exec(readFileSync(file, 'utf8'));
  if (match === null) return `${basename(file)}: no usage written\n`;
  const lines = (match[1] ?? '').split('\n').map((line) => line.replace(/^\s*\* ?/, ''));
  while (lines.length > 0 && lines[0]?.trim() === '') lines.shift();
  while (lines.length > 0 && lines.at(-1)?.trim() === '') lines.pop();
  return `${lines.join('\n')}\n`;
}

function isParseArgsError(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const { code } = error as Error & { code?: unknown };
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}
