/** Jobs: work that calls models through the gateway like any client (principle 6). */
export { parsePrompts, type PromptItem, type PromptMessage } from './prompts.ts';
export { runGenerateJob, type GenerateJobOptions, type ItemResult, type JobCallError, type JobSummary } from './generate.ts';
export { datasetFromJob, jobCallFilters } from './dataset.ts';
