/** The ledger: call records, the batching writer with spill-to-disk, pricing. */
export type { CallRecord, CallSink, CallStatus, CallEndpoint } from './types.ts';
export { LedgerWriter, type LedgerWriterOptions, type LedgerWriterStats, type CallStoreWriter } from './writer.ts';
export {
  priceCall,
  parsePriceTable,
  defaultPriceTable,
  findModelPrice,
  deploymentPricingSchema,
  type DeploymentPricing,
  type ModelPrice,
  type PriceTable,
  type PriceCallInput,
  type PriceCallResult,
} from './pricing.ts';
