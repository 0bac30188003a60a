/**
 * The Lua scripts of the Redis limit store. Each runs atomically on the Redis server, so a
 * check-and-reserve across several buckets is one indivisible step for every replica, and
 * each costs one round trip (EVALSHA, see `defineScript` in `redis-store.ts`); a call's reservations are
 * reserved together and settled together, and the calls of one event-loop turn share a script
 * (`RedisLimitStore`).
 *
 * The rules are those of `evaluation.ts` and `memory-store.ts`; keep them in step. Counters:
 * - window (`w`): a hash; field `t` = total of live sub-windows, `o` = oldest index that may
 *   hold a count, and one field per sub-window index. Old sub-windows are dropped lazily,
 *   oldest first, so each reserve does O(1) amortized work per bucket.
 * - concurrent (`c`): a sorted set of reservation ids scored by lease expiry; expired ones are
 *   dropped before counting, so a dead process's slots age out.
 * - usd (`u`): an integer of micro-dollars per bucket and calendar period.
 * The clock is the caller's (each call's `now` in ARGV), so tests can move time; replicas need NTP-synced
 * clocks (skew shifts sub-window boundaries by the skew, and a lagging clock never charges an
 * already-expired sub-window: the script moves it forward and reports the slot it used).
 */

/** Arguments before the counters' in both scripts' ARGV: the counter count and the call (or reservation) count. */
export const LEADING_ARGUMENTS = 2;
/** Fields per counter in the reserve script's ARGV: kind, limit, and the window (w) or the period's end (u). */
export const RESERVE_FIELDS_PER_COUNTER = 3;
/** Fields per call before its parts' in the reserve script's ARGV: now, lease, record TTL, part count. */
export const RESERVE_FIELDS_PER_CALL = 4;
/** Fields per part (one reservation) before its entries', in both scripts' ARGV: member, entry count. */
export const FIELDS_PER_PART = 2;
/** Fields per entry in the reserve script's ARGV: counter index, amount. */
export const RESERVE_FIELDS_PER_ENTRY = 2;
/** Numbers before a call's first entry's in the reserve script's reply: admitted (1 or 0), the refused entry. */
export const REPLY_ENTRIES_OFFSET = 2;
/** Numbers per entry in the reserve script's reply: used before, reset after, retry after, the slot charged. */
export const RESERVE_REPLY_PER_ENTRY = 4;
/** Fields per counter in the settle script's ARGV: kind. */
export const SETTLE_FIELDS_PER_COUNTER = 1;
/** Fields per entry in the settle script's ARGV: counter index, delta, slot. */
export const SETTLE_FIELDS_PER_ENTRY = 3;

/*
 * Numbers go to Redis as strings made with '%d': a Lua number passed as it is, or made with
 * '%.0f', is formatted as a float (glibc's printf_fp showed in Redis's profile), and '%.14g'
 * would write a count from 1e14 up as "1e+14", which HINCRBY and INCRBY refuse. Every count is
 * an integer in store units.
 *
 * A command from Lua costs Redis more than the command itself, so a window is read with one
 * HMGET and charged with one HSET of the values it read (the script runs alone, so nothing
 * changes in between), a window's expiry is set when a sub-window gets its first count, and a
 * budget's once, when its key is made.
 */
const COMMON = `
local SUBS = 120
local function fits(used, amount, limit) return used + amount <= limit and used < limit end
local function int(number) return string.format('%d', number) end
local field = int
`;

/** A budget key outlives its period by this much, so a late settle still lands in it. */
export const BUDGET_RETENTION_MS = 2 * 24 * 60 * 60 * 1000;

/**
 * Reserves for one or more calls (the calls that asked in one event-loop turn), each exactly as
 * if it ran alone after the calls before it: a call refused does not change what the next sees.
 *
 * The calls of a turn mostly share their counters (one tenant's key, team and org, one
 * deployment), so each distinct counter is sent once, with its bucket's kind and limit, and an
 * entry names its counter by index: Redis's time goes mostly to the script's arguments (a Lua
 * string each, and `tonumber` on the numbers), not to its commands.
 * KEYS: the counter keys, then per call one record key per part.
 * ARGV: counter count, call count (`LEADING_ARGUMENTS`); per counter: kind, limit, p
 *   (`RESERVE_FIELDS_PER_COUNTER`; w: the window in ms, u: the period's end in ms, c: 0); then per
 *   call: now, leaseMs, recordTtlMs, part count (`RESERVE_FIELDS_PER_CALL`), then per part: its
 *   reservation id (a concurrency slot's member), entry count (`FIELDS_PER_PART`), then per
 *   entry: counter index (1-based), amount (`RESERVE_FIELDS_PER_ENTRY`). A window entry's
 *   sub-window is `floor(now / (window / SUBS))`, as `subWindowIndex` in `plan.ts` computes it.
 * Reply: per call, admitted (0|1), refused entry (1-based, 0 if none), then per entry:
 *   used, resetMs (-1 = unknown), retryAfterMs (-1 = unknown), slot charged (windows; else 0).
 */
export const RESERVE_SCRIPT = `${COMMON}
-- A window's total, the sub-window to charge, whether its oldest index \`o\` is set, and the
-- charged sub-window's count: one HMGET in the common case, old sub-windows dropped first.
local function read_window(key, current)
  local oldest_live = current - SUBS
  local values = redis.call('HMGET', key, 'o', 't', field(current))
  local oldest = tonumber(values[1])
  if not oldest then return 0, current, false, 0 end
  local total = tonumber(values[2]) or 0
  if oldest >= oldest_live then
    if oldest <= current then return total, current, true, tonumber(values[3]) or 0 end
    -- This clock lags the one that moved the window on: charge its oldest live sub-window.
    return total, oldest, true, tonumber(redis.call('HGET', key, field(oldest))) or 0
  end
  if oldest_live - oldest > SUBS then
    redis.call('DEL', key)
    return 0, current, false, 0
  end
  for index = oldest, oldest_live - 1 do
    local name = field(index)
    local count = tonumber(redis.call('HGET', key, name))
    if count then
      total = total - count
      redis.call('HDEL', key, name)
    end
  end
  redis.call('HSET', key, 't', int(total), 'o', field(oldest_live))
  return total, current, true, tonumber(values[3]) or 0
end

local counter_count = tonumber(ARGV[1])
local kinds, limits, params = {}, {}, {}
for c = 1, counter_count do
  local base = ${LEADING_ARGUMENTS} + (c - 1) * ${RESERVE_FIELDS_PER_COUNTER}
  kinds[c], limits[c], params[c] = ARGV[base + 1], tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
end

local reply = {}
-- The record keys and the ARGV before the current call's.
local record_base = counter_count
local argument_base = ${LEADING_ARGUMENTS} + counter_count * ${RESERVE_FIELDS_PER_COUNTER}
for call = 1, tonumber(ARGV[2]) do
  local now = tonumber(ARGV[argument_base + 1])
  local lease = tonumber(ARGV[argument_base + 2])
  local record_ttl = ARGV[argument_base + 3]
  local parts = tonumber(ARGV[argument_base + 4])
  argument_base = argument_base + ${RESERVE_FIELDS_PER_CALL}
  -- Per entry: its counter, amount (and as sent) and member; usage before the charge; windows:
  -- the sub-window charged, whether \`o\` is set and that sub-window's count; budgets: whether
  -- the key exists.
  local counters, amounts, amount_texts, members, used, slots, known, counts = {}, {}, {}, {}, {}, {}, {}, {}
  local entries = 0
  for part = 1, parts do
    local member = ARGV[argument_base + 1]
    local part_entries = tonumber(ARGV[argument_base + 2])
    argument_base = argument_base + ${FIELDS_PER_PART}
    for j = 1, part_entries do
      local base = argument_base + (j - 1) * ${RESERVE_FIELDS_PER_ENTRY}
      entries = entries + 1
      counters[entries] = tonumber(ARGV[base + 1])
      amount_texts[entries] = ARGV[base + 2]
      amounts[entries] = tonumber(amount_texts[entries])
      members[entries] = member
    end
    argument_base = argument_base + part_entries * ${RESERVE_FIELDS_PER_ENTRY}
  end

  local refused = 0
  for j = 1, entries do
    local c = counters[j]
    local key, kind = KEYS[c], kinds[c]
    slots[j] = 0
    if kind == 'w' then
      used[j], slots[j], known[j], counts[j] = read_window(key, math.floor(now / (params[c] / SUBS)))
    elseif kind == 'c' then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
      used[j] = redis.call('ZCARD', key)
    else
      local value = redis.call('GET', key)
      known[j] = value ~= false
      used[j] = tonumber(value) or 0
    end
    if refused == 0 and not fits(used[j], amounts[j], limits[c]) then refused = j end
  end

  reply[#reply + 1] = refused == 0 and 1 or 0
  reply[#reply + 1] = refused
  for j = 1, entries do
    local c = counters[j]
    local key, kind, limit, amount = KEYS[c], kinds[c], limits[c], amounts[j]
    local reset, retry = -1, -1
    if kind == 'w' then
      local window = params[c]
      local width = window / SUBS
      if refused == 0 then
        if amount > 0 then
          local slot = field(slots[j])
          if known[j] then
            redis.call('HSET', key, slot, int(counts[j] + amount), 't', int(used[j] + amount))
          else
            redis.call('HSET', key, slot, int(counts[j] + amount), 't', int(used[j] + amount), 'o', slot)
          end
          -- The key must outlive its newest sub-window. One that already holds a count got it
          -- from a charge in its own span, which set an expiry covering the sub-window's life.
          if counts[j] <= 0 then redis.call('PEXPIRE', key, int(math.ceil(window + 2 * width))) end
        end
        -- An upper bound when nothing was charged now: the newest usage is at most this recent.
        reset = (used[j] + amount > 0) and math.ceil((slots[j] + SUBS + 1) * width - now) or 0
      else
        -- Refused somewhere: walk the live sub-windows, oldest first, for when this fits and empties.
        reset, retry = 0, -1
        local freed = 0
        for index = math.floor(now / width) - SUBS, slots[j] do
          local count = tonumber(redis.call('HGET', key, field(index))) or 0
          if count > 0 then
            freed = freed + count
            reset = math.ceil((index + SUBS + 1) * width - now)
            if retry == -1 and fits(used[j] - freed, amount, limit) then retry = reset end
          end
        end
      end
    elseif kind == 'c' then
      if refused == 0 then
        redis.call('ZADD', key, int(now + lease), members[j])
        redis.call('PEXPIRE', key, int(lease))
      end
    else
      local until_end = params[c] - now
      retry = until_end
      reset = (used[j] > 0 or (refused == 0 and amount > 0)) and until_end or 0
      if refused == 0 and amount > 0 then
        redis.call('INCRBY', key, amount_texts[j])
        -- The period's end is fixed: an existing key already expires after it.
        if not known[j] then redis.call('PEXPIRE', key, int(until_end + ${BUDGET_RETENTION_MS})) end
      end
    end
    reply[#reply + 1] = used[j]
    reply[#reply + 1] = reset
    reply[#reply + 1] = retry
    reply[#reply + 1] = slots[j]
  end

  if refused == 0 then
    for p = 1, parts do redis.call('SET', KEYS[record_base + p], '1', 'PX', record_ttl) end
  end
  record_base = record_base + parts
end
return reply
`;

/**
 * Settles or releases one or more reservations (the reservations finished in one event-loop
 * turn). As in the reserve script, each distinct counter is sent once and an entry names it by
 * index; an entry that would change nothing (a window or budget entry with a delta of 0) is not
 * sent.
 * KEYS: the counter keys, then per reservation its record key.
 * ARGV: counter count, reservation count (`LEADING_ARGUMENTS`); per counter: kind
 *   (`SETTLE_FIELDS_PER_COUNTER`); then per reservation: its id (a concurrency slot's member),
 *   entry count (`FIELDS_PER_PART`), then per entry: counter index (1-based), delta, slot
 *   (`SETTLE_FIELDS_PER_ENTRY`; the sub-window charged for windows, else 0).
 * Reply: per reservation, 1 if applied, 0 if already settled, released or expired (idempotence).
 */
export const SETTLE_SCRIPT = `${COMMON}
local counter_count = tonumber(ARGV[1])
local kinds = {}
for c = 1, counter_count do kinds[c] = ARGV[${LEADING_ARGUMENTS} + (c - 1) * ${SETTLE_FIELDS_PER_COUNTER} + 1] end
local argument_base = ${LEADING_ARGUMENTS} + counter_count * ${SETTLE_FIELDS_PER_COUNTER}
local reply = {}
for r = 1, tonumber(ARGV[2]) do
  local member = ARGV[argument_base + 1]
  local entries = tonumber(ARGV[argument_base + 2])
  argument_base = argument_base + ${FIELDS_PER_PART}
  if redis.call('DEL', KEYS[counter_count + r]) == 0 then
    reply[r] = 0
  else
    reply[r] = 1
    for j = 1, entries do
      local base = argument_base + (j - 1) * ${SETTLE_FIELDS_PER_ENTRY}
      local c = tonumber(ARGV[base + 1])
      local key, kind = KEYS[c], kinds[c]
      if kind == 'c' then
        redis.call('ZREM', key, member)
      elseif kind == 'u' then
        if redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, ARGV[base + 2]) end
      else
        -- Only a sub-window still inside the window is adjusted: one that aged out no longer counts.
        local delta, slot = tonumber(ARGV[base + 2]), ARGV[base + 3]
        local values = redis.call('HMGET', key, 'o', 't', slot)
        local oldest, count = tonumber(values[1]), tonumber(values[3])
        if oldest and count and tonumber(slot) >= oldest then
          redis.call('HSET', key, slot, int(count + delta), 't', int((tonumber(values[2]) or 0) + delta))
        end
      end
    end
  end
  argument_base = argument_base + entries * ${SETTLE_FIELDS_PER_ENTRY}
end
return reply
`;
