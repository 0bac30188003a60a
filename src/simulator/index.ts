/**
 * Seed's provider simulator: a loopback HTTP server that answers like OpenAI, Azure OpenAI
 * and Anthropic — deterministic content, real rate-limit headers and 429s, latency and fault
 * injection — for tests, benchmarks and the bundled example configuration.
 *
 * Per-request control headers: `x-sim-latency-ms`, `x-sim-ttft-ms`,
 * `x-sim-tokens-per-second`, `x-sim-completion-tokens`, `x-sim-fault: KIND[:NUMBER]`.
 * Control API: `GET /_sim/stats`, `GET|POST|DELETE /_sim/faults`, `POST /_sim/reset`.
 */
export { startSimulator, type Simulator, type Simulator as SimulatorHandle } from './server.ts';
export {
  simulatorOptionsSchema,
  modelOptionsSchema,
  faultRuleSchema,
  limitsSchema,
  faultKinds,
  type SimulatorOptions,
  type ModelOptions,
  type FaultRule,
  type FaultRuleInput,
  type FaultKind,
  type Limits,
} from './options.ts';
export type { SimulatorStats } from './stats.ts';
export { formatDuration } from './limits.ts';
