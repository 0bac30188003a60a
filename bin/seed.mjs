#!/usr/bin/env node
// Entry point of the `seed` CLI. Seed ships as TypeScript source and is run through tsx's
// loader, so a checkout needs no build step: `npm ci` then `npx seed …` or `npm start`.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
