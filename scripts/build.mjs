#!/usr/bin/env node
// `npm run build` (also run by `npm ci` through `prepare`): compiles src/ to dist/ with tsc and
// copies the data files modules read beside themselves (price table, terms profiles). The CLI
// runs dist/ when it is current and falls back to the TypeScript sources through tsx otherwise.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src');
const output = join(root, 'dist');

rmSync(output, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
if (tsc.status !== 0) {
  rmSync(output, { recursive: true, force: true });
  console.error('build failed: the CLI will run from the TypeScript sources (slower start)');
  // Under `prepare` (npm ci) a failed build must not block installing: the sources still run.
  process.exit(process.argv.includes('--tolerant') ? 0 : (tsc.status ?? 1));
}

function copyData(directory) {
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) copyData(path);
    else if (name.endsWith('.yaml')) cpSync(path, join(output, relative(source, path)));
  }
}
copyData(source);
