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
/** Fields per counter in the reserve script's ARGV: kind, limit, and the window (r, t) or the period's end (u). */
export const RESERVE_FIELDS_PER_COUNTER = 3;
/** Fields per bucket list in both scripts' ARGV before its counters': the counter count. */
export const FIELDS_PER_LIST = 1;
/** Fields per call before its parts' in the reserve script's ARGV: now, lease, record TTL, part count. */
export const RESERVE_FIELDS_PER_CALL = 4;
/** Fields per part (one reservation) in the reserve script's ARGV: member, bucket list, tokens, micro-dollars. */
export const RESERVE_FIELDS_PER_PART = 4;
/** Numbers before a call's first entry's in the reserve script's reply: its outcome (`RESERVE_REFUSED`...), the refused entry. */
export const REPLY_ENTRIES_OFFSET = 2;
/** A call's first number in the reserve script's reply: refused, admitted, admitted with a window charged in another sub-window. */
export const RESERVE_REFUSED = 0;
export const RESERVE_ADMITTED = 1;
export const RESERVE_ADMITTED_MOVED = 2;
/**
 * Numbers per entry in the reserve script's reply for an admitted call: used before, and only when
 * a window entry of the call was charged in another sub-window than the call's own
 * (`RESERVE_ADMITTED_MOVED`), the slot charged (windows; else 0). When the bucket empties
 * follows from them (`resetAfterCharge`).
 */
export const RESERVE_REPLY_PER_ADMITTED_ENTRY = 1;
export const RESERVE_REPLY_PER_MOVED_ENTRY = 2;
/** Numbers per entry in the reserve script's reply for a refused call: used, reset, retry after. */
export const RESERVE_REPLY_PER_REFUSED_ENTRY = 3;
/** Fields per counter in the settle script's ARGV: kind. */
export const SETTLE_FIELDS_PER_COUNTER = 1;
/** Fields per reservation before its slots in the settle script's ARGV: member, list, tokens delta, micro-dollars delta, slot count. */
export const SETTLE_FIELDS_PER_RESERVATION = 5;

/*
 * Numbers go to Redis as strings made with '%d': a Lua number passed as it is, or made with
 * '%.0f', is formatted as a float (glibc's printf_fp showed in Redis's profile), and '%.14g'
 * would write a count from 1e14 up as "1e+14", which HINCRBY and INCRBY refuse. Every count is
 * an integer in store units.
 *
 * What costs Redis is the Lua: a command called from Lua costs several times the command's own
 * work, and so does each `tonumber`, `string.format` and table grown on the way (counted with
 * callgrind on Redis 7.0: ~2 000 instructions a `tonumber` or `string.format`, ~8 000 a table of
 * 11 filled from empty). So each script reads each key once, keeps what it read in Lua, charges
 * it there call after call (the script runs alone, so nothing changes in between) and writes it
 * back once at its end: a window with one HMGET and one HSET, a budget with one GET and one
 * INCRBY, for all the calls of a turn. A window's expiry is set when a sub-window gets its
 * first count, and a budget's once, when its key is made.
 */
const COMMON = `
local SUBS = 120
local function fits(used, amount, limit) return used + amount <= limit and used < limit end
local function int(number) return string.format('%d', number) end
local field = int
-- Per counter (the first KEYS), its home: the first counter on its key, which holds the key's
-- state in the script (two counters share a key when a bucket was made again with another limit).
local function homes_of(counter_count)
  local homes, home_of_key = {}, {}
  for c = 1, counter_count do
    local key = KEYS[c]
    local home = home_of_key[key] or c
    home_of_key[key], homes[c] = home, home
  end
  return homes
end
-- The bucket lists from ARGV[base] (their count) on, their counters one after another in one table
-- (a table per list costs its growth): per list, where its counters start and how many there are.
-- Returns those three tables and the index of the last ARGV read.
local function read_lists(base)
  local list_at, list_length, list_counters = {}, {}, {}
  local listed = 0
  for l = 1, tonumber(ARGV[base]) do
    local length = tonumber(ARGV[base + 1])
    list_at[l], list_length[l] = listed, length
    for j = 1, length do list_counters[listed + j] = tonumber(ARGV[base + ${FIELDS_PER_LIST} + j]) end
    listed = listed + length
    base = base + ${FIELDS_PER_LIST} + length
  end
  return list_at, list_length, list_counters, base
end
`;

/** A budget key outlives its period by this much, so a late settle still lands in it. */
export const BUDGET_RETENTION_MS = 2 * 24 * 60 * 60 * 1000;

/**
 * Reserves for one or more calls (the calls that asked in one event-loop turn), each exactly as
 * if it ran alone after the calls before it: a call refused does not change what the next sees.
 *
 * The calls of a turn mostly share their counters (one tenant's key, team and org, one
 * deployment), so each distinct counter is sent once, with its bucket's kind and limit; and
 * their parts mostly share their bucket lists, so each distinct list of counters is sent once,
 * and a part names its list and carries its estimates, from which the script takes each entry's
 * amount (1 for requests and concurrency, the tokens for tokens, the micro-dollars for usd, as
 * `amountFor` in `plan.ts`): each argument costs Redis a Lua string, and each number a
 * `tonumber` (see the note above `COMMON`).
 * KEYS: the counter keys, then per call one record key per part.
 * ARGV: counter count, call count (`LEADING_ARGUMENTS`); per counter: kind, limit, p
 *   (`RESERVE_FIELDS_PER_COUNTER`; kind r (requests) or t (tokens): a window, p its length in ms;
 *   u: a budget, p its period's end in ms; c: concurrency, p 0); the list count, then per list:
 *   its counter count (`FIELDS_PER_LIST`) and its counters (1-based indexes); then per
 *   call: now, leaseMs, recordTtlMs, part count (`RESERVE_FIELDS_PER_CALL`), then per part: its
 *   reservation id (a concurrency slot's member), its list (1-based), its tokens and its
 *   micro-dollars (`RESERVE_FIELDS_PER_PART`). A call's entries are its parts' lists' counters,
 *   in order. A window entry's sub-window is `floor(now / (window / SUBS))`, as
 *   `subWindowIndex` in `plan.ts` computes it.
 * Reply: per call, its outcome (`RESERVE_REFUSED`, `RESERVE_ADMITTED`, `RESERVE_ADMITTED_MOVED`)
 *   and its refused entry (1-based, 0 if none), then per entry: when admitted, used
 *   (`RESERVE_REPLY_PER_ADMITTED_ENTRY`), and the slot charged (windows; else 0) only when a
 *   window was charged in another sub-window than the call's own, as a lagging clock's are
 *   (`RESERVE_REPLY_PER_MOVED_ENTRY`); when the bucket empties is the gateway's to work out from
 *   them (`resetAfterCharge` in `plan.ts`): a number of the reply costs Redis ~600
 *   instructions (11 fewer a call saved ~7 thousand), far more than the sum. When refused: used, resetMs and retryAfterMs (-1 =
 *   unknown; `RESERVE_REPLY_PER_REFUSED_ENTRY`), which need the sub-windows' counts.
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
-- Per counter: kind, limit, p.
local kinds, limits, params = {}, {}, {}
for c = 1, counter_count do
  local base = ${LEADING_ARGUMENTS} + (c - 1) * ${RESERVE_FIELDS_PER_COUNTER}
  kinds[c], limits[c], params[c] = ARGV[base + 1], tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
end
local homes = homes_of(counter_count)

local list_at, list_length, list_counters, argument_base = read_lists(${LEADING_ARGUMENTS} + counter_count * ${RESERVE_FIELDS_PER_COUNTER} + 1)

-- What the script has read of each key (by its home), charged in place by the calls after, and
-- written back once, when the script ends or before a read that must see Redis: the calls of a
-- turn mostly share their keys, and a command from Lua costs Redis more than the Lua around it.
-- A key's state is one table made whole by a constructor (a table grown field by field costs
-- its growth), by its home in \`state\`. Windows: the sub-window index read for, the total, the
-- slot charged, whether \`o\` is set, the slot's count, its count as read, whether charged since.
local W_CURRENT, W_TOTAL, W_SLOT, W_KNOWN, W_COUNT, W_READ, W_DIRTY = 1, 2, 3, 4, 5, 6, 7
-- Budgets: the value, whether the key exists, the amount charged since read, and the time of the
-- call that charged it first (its expiry counts from there).
local U_VALUE, U_KNOWN, U_CHARGED, U_FIRST = 1, 2, 3, 4
-- Concurrency: the time its expired slots were dropped at, the count.
local C_AT, C_USED = 1, 2
local state = {}

local function write_window(h, window)
  if not window[W_DIRTY] then return end
  local key, slot = KEYS[h], field(window[W_SLOT])
  if window[W_KNOWN] then
    redis.call('HSET', key, slot, int(window[W_COUNT]), 't', int(window[W_TOTAL]))
  else
    redis.call('HSET', key, slot, int(window[W_COUNT]), 't', int(window[W_TOTAL]), 'o', slot)
    window[W_KNOWN] = true
  end
  -- The key must outlive its newest sub-window. One that already held a count got it from a
  -- charge in its own span, which set an expiry covering the sub-window's life.
  if window[W_READ] <= 0 then redis.call('PEXPIRE', key, int(math.ceil(params[h] + 2 * params[h] / SUBS))) end
  window[W_READ], window[W_DIRTY] = window[W_COUNT], false
end

local function write_budget(h, budget)
  if budget[U_CHARGED] <= 0 then return end
  redis.call('INCRBY', KEYS[h], int(budget[U_CHARGED]))
  -- The period's end is fixed: an existing key already expires after it.
  if not budget[U_KNOWN] then redis.call('PEXPIRE', KEYS[h], int(params[h] - budget[U_FIRST] + ${BUDGET_RETENTION_MS})) end
  budget[U_KNOWN], budget[U_CHARGED] = true, 0
end

local reply, replied = {}, 0
-- The record keys before the current call's.
local record_base = counter_count
-- Per entry of the current call: its counter, amount and member; usage before the charge; the
-- slot charged (windows). Reused from call to call: a table filled afresh costs its growth.
local counters, amounts, members, used, slots = {}, {}, {}, {}, {}
for call = 1, tonumber(ARGV[2]) do
  local now = tonumber(ARGV[argument_base + 1])
  local lease = tonumber(ARGV[argument_base + 2])
  local record_ttl = ARGV[argument_base + 3]
  local parts = tonumber(ARGV[argument_base + 4])
  argument_base = argument_base + ${RESERVE_FIELDS_PER_CALL}
  local entries = 0
  for part = 1, parts do
    local member = ARGV[argument_base + 1]
    local list = tonumber(ARGV[argument_base + 2])
    local tokens = tonumber(ARGV[argument_base + 3])
    local usd = tonumber(ARGV[argument_base + 4])
    argument_base = argument_base + ${RESERVE_FIELDS_PER_PART}
    local at = list_at[list]
    for j = at + 1, at + list_length[list] do
      local c = list_counters[j]
      local kind = kinds[c]
      entries = entries + 1
      counters[entries], members[entries] = c, member
      if kind == 't' then amounts[entries] = tokens elseif kind == 'u' then amounts[entries] = usd else amounts[entries] = 1 end
    end
  end

  -- Whether a window entry is charged in another sub-window than its call's (this clock lags).
  local refused, moved = 0, false
  for j = 1, entries do
    local c = counters[j]
    local h, kind = homes[c], kinds[c]
    local read = state[h]
    if kind == 'r' or kind == 't' then
      local current = math.floor(now / (params[c] / SUBS))
      if read == nil or read[W_CURRENT] ~= current then
        if read then write_window(h, read) end
        local total, slot, known, count = read_window(KEYS[h], current)
        read = { current, total, slot, known, count, count, false } -- in W_* order
        state[h] = read
      end
      used[j], slots[j] = read[W_TOTAL], read[W_SLOT]
      if read[W_SLOT] ~= current then moved = true end
    elseif kind == 'c' then
      if read == nil or read[C_AT] ~= now then
        redis.call('ZREMRANGEBYSCORE', KEYS[h], '-inf', now)
        read = { now, redis.call('ZCARD', KEYS[h]) } -- in C_* order
        state[h] = read
      end
      used[j], slots[j] = read[C_USED], 0
    else
      if read == nil then
        local value = redis.call('GET', KEYS[h])
        read = { tonumber(value) or 0, value ~= false, 0, 0 } -- in U_* order
        state[h] = read
      end
      used[j], slots[j] = read[U_VALUE], 0
    end
    if refused == 0 and not fits(used[j], amounts[j], limits[c]) then refused = j end
  end

  if refused == 0 then
    replied = replied + 2
    reply[replied - 1], reply[replied] = moved and 2 or 1, 0
    for j = 1, entries do
      local c = counters[j]
      local h, kind, amount = homes[c], kinds[c], amounts[j]
      local read = state[h]
      if kind == 'r' or kind == 't' then
        if amount > 0 then
          read[W_COUNT], read[W_TOTAL], read[W_DIRTY] = read[W_COUNT] + amount, read[W_TOTAL] + amount, true
        end
      elseif kind == 'c' then
        redis.call('ZADD', KEYS[h], int(now + lease), members[j])
        redis.call('PEXPIRE', KEYS[h], int(lease))
        read[C_USED] = read[C_USED] + 1
      elseif amount > 0 then
        if read[U_CHARGED] == 0 then read[U_FIRST] = now end
        read[U_VALUE], read[U_CHARGED] = read[U_VALUE] + amount, read[U_CHARGED] + amount
      end
      replied = replied + 1
      reply[replied] = used[j]
      if moved then
        replied = replied + 1
        reply[replied] = slots[j]
      end
    end
    for p = 1, parts do redis.call('SET', KEYS[record_base + p], '1', 'PX', record_ttl) end
  else
    replied = replied + 2
    reply[replied - 1], reply[replied] = 0, refused
    for j = 1, entries do
      local c = counters[j]
      local h, kind, amount = homes[c], kinds[c], amounts[j]
      local reset, retry = -1, -1
      if kind == 'r' or kind == 't' then
        -- Walk the live sub-windows, oldest first, for when this fits and empties, as Redis
        -- holds them once this script's charges are written.
        local width = params[c] / SUBS
        write_window(h, state[h])
        reset = 0
        local freed = 0
        for index = math.floor(now / width) - SUBS, slots[j] do
          local count = tonumber(redis.call('HGET', KEYS[h], field(index))) or 0
          if count > 0 then
            freed = freed + count
            reset = math.ceil((index + SUBS + 1) * width - now)
            if retry == -1 and fits(used[j] - freed, amount, limits[c]) then retry = reset end
          end
        end
      elseif kind == 'u' then
        retry = params[c] - now
        reset = used[j] > 0 and retry or 0
      end
      replied = replied + 3
      reply[replied - 2], reply[replied - 1], reply[replied] = used[j], reset, retry
    end
  end
  record_base = record_base + parts
end

for c = 1, counter_count do
  local read = state[c]
  if read then
    if kinds[c] == 'u' then write_budget(c, read) elseif kinds[c] ~= 'c' then write_window(c, read) end
  end
end
return reply
`;

/**
 * Settles or releases one or more reservations (the reservations finished in one event-loop
 * turn). As in the reserve script, each distinct counter is sent once, and each distinct list of
 * the counters a reservation adjusts; a reservation names its list and carries its deltas: one
 * for its tokens entries and one for its usd entries (each entry of a kind charged the same, so
 * each moves by the same), -1 for a requests entry (sent on a release only) and a release of its
 * slot for a concurrency entry. An entry that would change nothing (a window or budget entry with
 * a delta of 0) is not in the list.
 * KEYS: the counter keys, then per reservation its record key.
 * ARGV: counter count, reservation count (`LEADING_ARGUMENTS`); per counter: kind, as the
 *   reserve script's (`SETTLE_FIELDS_PER_COUNTER`); the list count, then per list: its counter
 *   count (`FIELDS_PER_LIST`) and its counters; then per reservation: its id (a concurrency slot's
 *   member), its list, its tokens delta, its micro-dollars delta, and its slot count
 *   (`SETTLE_FIELDS_PER_RESERVATION`), then its slots: the sub-windows its window entries were
 *   charged in, one for all (the common case: one window length, a clock that did not lag) or one
 *   per window entry in the list's order.
 * Reply: per reservation, 1 if applied, 0 if already settled, released or expired (idempotence).
 */
export const SETTLE_SCRIPT = `${COMMON}
local counter_count = tonumber(ARGV[1])
local kinds = {}
for c = 1, counter_count do kinds[c] = ARGV[${LEADING_ARGUMENTS} + (c - 1) * ${SETTLE_FIELDS_PER_COUNTER} + 1] end
local homes = homes_of(counter_count)

-- What the script has read of each key (by its home), adjusted in place and written back once
-- at the end, as in the reserve script. Windows: the oldest live index (nil if \`o\` is unset),
-- the total, the first sub-window read and its count (false: no such field), the counts of any
-- other sub-windows read, by name (nil: none yet), whether adjusted. Budgets: whether the key
-- exists (nil: unread), the sum of the deltas.
local w_oldest, w_total, w_slot, w_count, w_others, w_dirty = {}, {}, {}, {}, {}, {}
local u_exists, u_delta = {}, {}

local list_at, list_length, list_counters, argument_base = read_lists(${LEADING_ARGUMENTS} + counter_count * ${SETTLE_FIELDS_PER_COUNTER} + 1)
local reply = {}
for r = 1, tonumber(ARGV[2]) do
  local member = ARGV[argument_base + 1]
  local list = tonumber(ARGV[argument_base + 2])
  local tokens_delta = tonumber(ARGV[argument_base + 3])
  local usd_delta = tonumber(ARGV[argument_base + 4])
  local slot_count = tonumber(ARGV[argument_base + 5])
  local slots_base = argument_base + ${SETTLE_FIELDS_PER_RESERVATION}
  argument_base = slots_base + slot_count
  if redis.call('DEL', KEYS[counter_count + r]) == 0 then
    reply[r] = 0
  else
    reply[r] = 1
    -- The slot of the window entry at hand, and it as a number (read once when all share it).
    local slot, slot_number, windows = ARGV[slots_base + 1], nil, 0
    local at = list_at[list]
    for j = at + 1, at + list_length[list] do
      local c = list_counters[j]
      local h, kind = homes[c], kinds[c]
      if kind == 'c' then
        redis.call('ZREM', KEYS[h], member)
      elseif kind == 'u' then
        if u_exists[h] == nil then u_exists[h], u_delta[h] = redis.call('EXISTS', KEYS[h]) == 1, 0 end
        if u_exists[h] then u_delta[h] = u_delta[h] + usd_delta end
      else
        windows = windows + 1
        if slot_count > 1 then slot, slot_number = ARGV[slots_base + windows], nil end
        local count, others
        if w_slot[h] == nil then
          local values = redis.call('HMGET', KEYS[h], 'o', 't', slot)
          count = tonumber(values[3]) or false
          w_slot[h], w_oldest[h], w_total[h] = slot, tonumber(values[1]), tonumber(values[2]) or 0
        elseif w_slot[h] == slot then
          count = w_count[h]
        else
          others = w_others[h]
          if others == nil then
            others = {}
            w_others[h] = others
          end
          count = others[slot]
          if count == nil then count = tonumber(redis.call('HGET', KEYS[h], slot)) or false end
        end
        -- Only a sub-window still inside the window is adjusted: one that aged out no longer counts.
        if w_oldest[h] and count then
          if slot_number == nil then slot_number = tonumber(slot) end
          if slot_number >= w_oldest[h] then
            local delta = kind == 't' and tokens_delta or -1
            count, w_total[h], w_dirty[h] = count + delta, w_total[h] + delta, true
          end
        end
        if others then others[slot] = count else w_count[h] = count end
      end
    end
  end
end

for c = 1, counter_count do
  if homes[c] == c then
    if w_dirty[c] and w_others[c] == nil then
      redis.call('HSET', KEYS[c], 't', int(w_total[c]), w_slot[c], int(w_count[c]))
    elseif w_dirty[c] then
      local fields = { 't', int(w_total[c]) }
      if w_count[c] then fields[3], fields[4] = w_slot[c], int(w_count[c]) end
      for slot, count in pairs(w_others[c]) do
        if count then
          fields[#fields + 1] = slot
          fields[#fields + 1] = int(count)
        end
      end
      redis.call('HSET', KEYS[c], unpack(fields))
    elseif u_exists[c] and u_delta[c] ~= 0 then
      redis.call('INCRBY', KEYS[c], int(u_delta[c]))
    end
  end
end
return reply
`;
