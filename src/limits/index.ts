/**
 * The limits subsystem: reservations and budgets, in memory or in Redis, behind one interface.
 * The composition root builds a store with `createLimitStore` and a `Limiter` over it.
 */
export { limitsSchema, limitStoreConfigSchema, type LimitsConfig, type LimitStoreConfig } from './config.ts';
export { bucketsFor, type LimitOwner, type LimitScope } from './buckets.ts';
export {
  approximateTokens,
  estimateChatTokens,
  estimateEmbeddingTokens,
  tokenCountingFor,
  type ChatEstimate,
  type TokenCounting,
} from './estimate.ts';
export { formatResetDuration, rateLimitHeaders } from './headers.ts';
export { Limiter, type Admission, type AdmitOutcome, type AdmitRequest, type LimiterOptions, type LimitsLogger } from './limiter.ts';
export { MemoryLimitStore } from './memory-store.ts';
export { createRedisClient, RedisLimitStore, waitForRedis } from './redis-store.ts';
export { createLimitStore } from './create-store.ts';
export {
  LimitStoreUnavailableError,
  type Bucket,
  type BucketStatus,
  type HeaderStatuses,
  type FinishRequest,
  type LimitStore,
  type Refusal,
  type Reservation,
  type ReserveRequest,
  type ReserveResult,
  type Usage,
} from './types.ts';
