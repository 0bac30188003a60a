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

/** Fields per call before its entries' in the reserve script's ARGV. */
export const RESERVE_FIELDS_PER_CALL = 5;
/** Fields per entry in the reserve script's ARGV. */
export const RESERVE_FIELDS_PER_ENTRY = 6;
/** Numbers before a call's first entry's in the reserve script's reply: admitted (1 or 0), the refused entry. */
export const REPLY_ENTRIES_OFFSET = 2;
/** Numbers per entry in the reserve script's reply: used before, reset after, retry after, the slot charged. */
export const RESERVE_REPLY_PER_ENTRY = 4;
/** Fields per entry in the settle script's ARGV. */
export const SETTLE_FIELDS_PER_ENTRY = 4;

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

/**
 * Reserves for one or more calls (the calls that asked in one event-loop turn), each exactly as
 * if it ran alone after the calls before it: a call refused does not change what the next sees.
 * KEYS: per call, one record key per part, then one counter key per entry.
 * ARGV: call count, then per call: now, partCount, entryCount, leaseMs, recordTtlMs
 *   (`RESERVE_FIELDS_PER_CALL`), then per entry: kind, limit, amount, p1, p2, member
 *   (w: p1 = sub-window index, p2 = windowMs; u: p1 = period end ms, p2 = retention ms).
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

local reply = {}
-- The KEYS and ARGV before the current call's.
local key_base, argument_base = 0, 1
for call = 1, tonumber(ARGV[1]) do
  local now = tonumber(ARGV[argument_base + 1])
  local parts = tonumber(ARGV[argument_base + 2])
  local entries = tonumber(ARGV[argument_base + 3])
  local lease = tonumber(ARGV[argument_base + 4])
  local record_ttl = ARGV[argument_base + 5]
  argument_base = argument_base + ${RESERVE_FIELDS_PER_CALL}
  local counters = key_base + parts
  -- Per entry: its kind, limit and amount; usage before the charge; windows: the sub-window
  -- charged, whether \`o\` is set and that sub-window's count; budgets: whether the key exists.
  local kinds, limits, amounts, used, slots, known, counts = {}, {}, {}, {}, {}, {}, {}

  local refused = 0
  for j = 1, entries do
    local key = KEYS[counters + j]
    local base = argument_base + (j - 1) * ${RESERVE_FIELDS_PER_ENTRY}
    local kind = ARGV[base + 1]
    local limit = tonumber(ARGV[base + 2])
    local amount = tonumber(ARGV[base + 3])
    kinds[j], limits[j], amounts[j] = kind, limit, amount
    slots[j] = 0
    if kind == 'w' then
      used[j], slots[j], known[j], counts[j] = read_window(key, tonumber(ARGV[base + 4]))
    elseif kind == 'c' then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
      used[j] = redis.call('ZCARD', key)
    else
      local value = redis.call('GET', key)
      known[j] = value ~= false
      used[j] = tonumber(value) or 0
    end
    if refused == 0 and not fits(used[j], amount, limit) then refused = j end
  end

  reply[#reply + 1] = refused == 0 and 1 or 0
  reply[#reply + 1] = refused
  for j = 1, entries do
    local key = KEYS[counters + j]
    local base = argument_base + (j - 1) * ${RESERVE_FIELDS_PER_ENTRY}
    local kind, limit, amount = kinds[j], limits[j], amounts[j]
    local p1, p2, member = tonumber(ARGV[base + 4]), tonumber(ARGV[base + 5]), ARGV[base + 6]
    local reset, retry = -1, -1
    if kind == 'w' then
      local width = p2 / SUBS
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
          if counts[j] <= 0 then redis.call('PEXPIRE', key, int(math.ceil(p2 + 2 * width))) end
        end
        -- An upper bound when nothing was charged now: the newest usage is at most this recent.
        reset = (used[j] + amount > 0) and math.ceil((slots[j] + SUBS + 1) * width - now) or 0
      else
        -- Refused somewhere: walk the live sub-windows, oldest first, for when this fits and empties.
        reset, retry = 0, -1
        local current = tonumber(ARGV[base + 4])
        local freed = 0
        for index = current - SUBS, slots[j] do
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
        redis.call('ZADD', key, int(now + lease), member)
        redis.call('PEXPIRE', key, int(lease))
      end
    else
      local until_end = p1 - now
      retry = until_end
      reset = (used[j] > 0 or (refused == 0 and amount > 0)) and until_end or 0
      if refused == 0 and amount > 0 then
        redis.call('INCRBY', key, ARGV[base + 3])
        -- The period's end is fixed: an existing key already expires after it.
        if not known[j] then redis.call('PEXPIRE', key, int(until_end + p2)) end
      end
    end
    reply[#reply + 1] = used[j]
    reply[#reply + 1] = reset
    reply[#reply + 1] = retry
    reply[#reply + 1] = slots[j]
  end

  if refused == 0 then
    for p = 1, parts do redis.call('SET', KEYS[key_base + p], '1', 'PX', record_ttl) end
  end
  key_base = counters + entries
  argument_base = argument_base + entries * ${RESERVE_FIELDS_PER_ENTRY}
end
return reply
`;

/**
 * Settles or releases one or more reservations (a call's caller and deployment parts at once).
 * KEYS: per reservation, its record key, then one counter key per entry.
 * ARGV: reservation count, then per reservation: its entry count, then per entry: kind, delta,
 *   slot, member.
 * Reply: per reservation, 1 if applied, 0 if already settled, released or expired (idempotence).
 */
export const SETTLE_SCRIPT = `${COMMON}
local reservations = tonumber(ARGV[1])
local key_index, argument_index = 1, 2
local reply = {}
for r = 1, reservations do
  local entries = tonumber(ARGV[argument_index])
  argument_index = argument_index + 1
  local record = KEYS[key_index]
  key_index = key_index + 1
  if redis.call('DEL', record) == 0 then
    reply[r] = 0
  else
    reply[r] = 1
    for j = 0, entries - 1 do
      local key = KEYS[key_index + j]
      local base = argument_index + j * ${SETTLE_FIELDS_PER_ENTRY}
      local kind = ARGV[base]
      local delta = tonumber(ARGV[base + 1])
      local slot = ARGV[base + 2]
      if kind == 'c' then
        redis.call('ZREM', key, ARGV[base + 3])
      elseif delta ~= 0 then
        if kind == 'u' then
          if redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, ARGV[base + 1]) end
        else
          -- Only a sub-window still inside the window is adjusted: one that aged out no longer counts.
          local values = redis.call('HMGET', key, 'o', 't', slot)
          local oldest, count = tonumber(values[1]), tonumber(values[3])
          if oldest and count and tonumber(slot) >= oldest then
            redis.call('HSET', key, slot, int(count + delta), 't', int((tonumber(values[2]) or 0) + delta))
          end
        end
      end
    end
  end
  key_index = key_index + entries
  argument_index = argument_index + entries * ${SETTLE_FIELDS_PER_ENTRY}
end
return reply
`;
