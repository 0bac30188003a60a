/**
 * One writer per spill directory: a lock file holding the owner's pid. Two processes sharing
 * a directory would replay and delete each other's live files, so the second one must fail
 * loudly. A lock left by a process that no longer exists is taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SeedError } from '../errors.ts';

const LOCK_FILE = 'writer.lock';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock on `directory`; returns the function that releases it. */
export function acquireSpillLock({ directory }: { directory: string }): () => void {
  const path = join(directory, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
      if (Number.isInteger(owner) && isAlive(owner)) {
        throw new SeedError('conflict', `spill directory ${directory} is in use by process ${owner}`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new SeedError('conflict', `could not lock spill directory ${directory}`);
}
