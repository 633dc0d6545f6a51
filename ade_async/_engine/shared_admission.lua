-- ade_async: the shared admission gate's decisions, run atomically inside Redis.
--
-- Every process that shares one quota calls this script; Redis runs one script at a time, so each
-- call reads and writes the whole state without races. Time comes from the Redis server (TIME),
-- never from the callers, whose clocks may disagree. All times are integer microseconds.
--
-- KEYS[1]  log     sorted set: one member per admission still inside the longest window. A create
--                  not yet answered is scored a little in the future (it counts as "now" in every
--                  window; its holder keeps pushing the score on while it waits); once answered it
--                  is scored at the answer, the late side of when the API counted it. Sliding
--                  windows are counted on it exactly.
-- KEYS[2]  leases  sorted set: one member per job in flight, scored by the lease's expiry. A holder
--                  renews its leases; a dead holder's leases expire and free their capacity.
-- KEYS[3]  state   hash: epoch (changes when Redis loses the data), hold_until (after a loss),
--                  paused_until and c429 (the shared 429 pause), and the adaptive (AIMD) rate.
--
-- ARGV[1]  operation: admit | accepted | rate_limited | refund | release | heartbeat | reseed
-- ARGV[2]  windows as "count,span_us;count,span_us" (span includes the safety margin)
-- ARGV[3]  max_in_flight (0: no cap)
-- ARGV[4]  lease_ttl_us
-- ARGV[5]  state_ttl_ms: how long the state hash outlives the last call
-- ARGV[6]  adaptive settings "initial,max,min,interval_us,step,factor" ('' when not adaptive)
-- ARGV[7]  a fresh random epoch id, used only if the state is missing
-- ARGV[8]  hold_us: how long admission holds after the state was found missing
-- ARGV[9]  pending_us: how far ahead an unanswered create is scored
-- ARGV[10..] the operation's own arguments (see each operation)
--
-- Replies are arrays of integers (Lua numbers are truncated to integers by Redis) and strings.

local log_key, lease_key, state_key = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]

local windows = {}
local longest = 0
for count, span in string.gmatch(ARGV[2], '(%d+),(%d+)') do
  local w = {tonumber(count), tonumber(span)}
  windows[#windows + 1] = w
  if w[2] > longest then longest = w[2] end
end
local cap = tonumber(ARGV[3])
local lease_ttl = tonumber(ARGV[4])
local state_ttl_ms = tonumber(ARGV[5])
local pending = tonumber(ARGV[9])
local adaptive = nil
if ARGV[6] ~= '' then
  local a = {}
  for v in string.gmatch(ARGV[6], '[^,]+') do a[#a + 1] = tonumber(v) end
  adaptive = {initial = a[1], max = a[2], min = a[3], interval = a[4], step = a[5], factor = a[6]}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function fmt(n)
  return string.format('%.0f', n)  -- never '1.7e+15': scores and ranges must stay exact
end

local function num(field, default)
  local v = redis.call('HGET', state_key, field)
  if v then return tonumber(v) end
  return default
end

-- The state, created when missing. A missing state with callers still running means Redis lost
-- its data (a restart without persistence, a failover, an eviction): admission then holds for
-- hold_us, long enough for every live process to re-add its recent admissions (reseed).
local epoch = redis.call('HGET', state_key, 'epoch')
if not epoch then
  epoch = ARGV[7]
  redis.call('HSET', state_key, 'epoch', epoch, 'hold_until', fmt(now + tonumber(ARGV[8])))
  if adaptive then
    redis.call('HSET', state_key, 'rate', adaptive.initial, 'slow_start', 1, 'clean_since', fmt(now),
      'last_decrease', 0, 'last_admitted', 0, 'limited', 0)
  end
end

-- Forget what no window can see any more, and leases nobody renewed.
if longest > 0 then
  redis.call('ZREMRANGEBYSCORE', log_key, '-inf', fmt(now - longest))
end
redis.call('ZREMRANGEBYSCORE', lease_key, '-inf', fmt(now))

local function touch()
  -- Every key gets an expiry, so a quota nobody uses any more leaves nothing behind.
  if longest > 0 then redis.call('PEXPIRE', log_key, math.ceil(longest / 1000) + 1000) end
  redis.call('PEXPIRE', lease_key, math.ceil(lease_ttl / 1000) * 2 + 1000)
  redis.call('PEXPIRE', state_key, state_ttl_ms)
end

local function window_used()
  local used = {}
  for i, w in ipairs(windows) do
    used[i] = redis.call('ZCOUNT', log_key, '(' .. fmt(now - w[2]), '+inf')
  end
  return used
end

-- The common tail of every reply: what the callers show in their stats.
local function snapshot(reply)
  local hold = math.max(num('hold_until', 0), num('paused_until', 0))
  reply[#reply + 1] = epoch
  reply[#reply + 1] = fmt(math.max(0, hold - now))
  reply[#reply + 1] = redis.call('ZCARD', lease_key)
  reply[#reply + 1] = fmt(adaptive and num('rate', 0) * 1000 or 0)  -- milli-creates per second
  local used = window_used()
  for i = 1, #windows do reply[#reply + 1] = used[i] end
  return reply
end

if op == 'admit' then
  -- ARGV[10] n: how many waiters this process has; ARGV[11] member prefix (unique per call);
  -- ARGV[12] recheck_us. Admits as many as everything allows now (up to n); says how long until
  -- the next one fits.
  local n = tonumber(ARGV[10])
  local prefix = ARGV[11]
  local recheck = tonumber(ARGV[12])
  local admitted = 0
  local wait = 0
  local hold = math.max(num('hold_until', 0), num('paused_until', 0))
  if hold > now then
    wait = hold - now
  else
    local k = n
    local used = window_used()
    for i, w in ipairs(windows) do k = math.min(k, w[1] - used[i]) end
    local leases = 0
    if cap > 0 then
      leases = redis.call('ZCARD', lease_key)
      k = math.min(k, cap - leases)
    end
    local spacing = 0
    if adaptive then
      spacing = 1000000 / num('rate', adaptive.initial)
      local next_at = num('last_admitted', 0) + spacing
      if next_at > now then
        if k > 0 then redis.call('HSET', state_key, 'limited', 1) end  -- the rate held a waiter back
        wait = next_at - now
        k = 0
      end
      k = math.min(k, 1)  -- one per spacing
    end
    if k < 0 then k = 0 end
    for i = 1, k do
      local member = prefix .. ':' .. i
      redis.call('ZADD', log_key, fmt(now + pending), member)
      if cap > 0 then redis.call('ZADD', lease_key, fmt(now + lease_ttl), member) end
    end
    admitted = k
    if adaptive and k > 0 then redis.call('HSET', state_key, 'last_admitted', fmt(now)) end
    if k < n then
      -- When does the next admission fit? For each full window, the admission that must age out
      -- is the (used - count)-th oldest inside it (counting the ones just made, scored now).
      for i, w in ipairs(windows) do
        local in_window = used[i] + k
        if in_window >= w[1] then
          local index = in_window - w[1]
          local oldest = now + pending
          if index < used[i] then
            local hit = redis.call('ZRANGEBYSCORE', log_key, '(' .. fmt(now - w[2]), '+inf', 'WITHSCORES',
              'LIMIT', index, 1)
            oldest = tonumber(hit[2])
          end
          if oldest > now then
            -- Held by creates still waiting for their answer, maybe in another process, whose
            -- answer cannot wake us: look again soon.
            wait = math.max(wait, recheck)
          else
            wait = math.max(wait, oldest + w[2] - now + 1)
          end
        end
      end
      if cap > 0 and leases + k >= cap then
        -- Only a release frees a slot; another process's release cannot wake us, so look again
        -- at the earliest lease expiry or after recheck_us, whichever is sooner.
        local first = redis.call('ZRANGE', lease_key, 0, 0, 'WITHSCORES')
        local until_expiry = recheck
        if first[2] then until_expiry = math.min(until_expiry, tonumber(first[2]) - now + 1) end
        wait = math.max(wait, until_expiry)
      end
      if adaptive and k > 0 then wait = math.max(wait, spacing) end
    end
  end
  touch()
  return snapshot({admitted, fmt(math.max(wait, 0)), fmt(now)})

elseif op == 'accepted' then
  -- A create was accepted: 429s are no longer consecutive, and the adaptive rate may grow.
  -- ARGV[10] member, ARGV[11] when its answer came (Redis clock): the entry moves there, the
  -- late side of when the server counted it.
  if ARGV[10] then redis.call('ZADD', log_key, 'XX', ARGV[11], ARGV[10]) end
  redis.call('HSET', state_key, 'c429', 0)
  if adaptive and num('limited', 0) == 1 and now - num('clean_since', now) >= adaptive.interval then
    local rate = num('rate', adaptive.initial)
    if num('slow_start', 1) == 1 then rate = rate * 2 else rate = rate + adaptive.step end
    redis.call('HSET', state_key, 'rate', math.min(adaptive.max, rate), 'clean_since', fmt(now), 'limited', 0)
  end
  touch()
  return snapshot({fmt(now)})

elseif op == 'rate_limited' then
  -- ARGV[10] member; ARGV[11] retry_after_us (-1: none); ARGV[12] jitter in [0, 1);
  -- ARGV[13] penalty_base_us; ARGV[14] penalty_cap_us; ARGV[15] max_retry_after_us;
  -- ARGV[16] admitted_at_us of the create that got the 429.
  -- The server did not count this create: it leaves the log. Every process pauses.
  local member = ARGV[10]
  redis.call('ZREM', log_key, member)
  redis.call('ZREM', lease_key, member)
  -- A 429 for a create admitted before the last pause was set belongs to the burst that set it:
  -- it does not step the count of 429s in a row up (that would escalate the backoff on one
  -- overshoot); it draws again at the same step.
  local c429 = math.max(num('c429', 0), 1)
  if tonumber(ARGV[16]) >= num('penalized_at', 0) then
    c429 = redis.call('HINCRBY', state_key, 'c429', 1)
    redis.call('HSET', state_key, 'penalized_at', fmt(now))
  end
  local retry_after = tonumber(ARGV[11])
  local pause
  if retry_after >= 0 then
    pause = math.min(retry_after, tonumber(ARGV[15]))
  else
    -- Exponential backoff with full jitter, k = consecutive 429s across every process.
    pause = tonumber(ARGV[12]) * math.min(tonumber(ARGV[14]), tonumber(ARGV[13]) * 2 ^ (c429 - 1))
  end
  local until_ = math.max(num('paused_until', 0), now + pause)
  redis.call('HSET', state_key, 'paused_until', fmt(until_))
  if adaptive and tonumber(ARGV[16]) >= num('last_decrease', 0) then
    -- Once per burst: 429s answering creates sent before the last decrease do not count again.
    local rate = math.max(adaptive.min, num('rate', adaptive.initial) * adaptive.factor)
    redis.call('HSET', state_key, 'rate', rate, 'slow_start', 0, 'last_decrease', fmt(now),
      'clean_since', fmt(now), 'limited', 0)
  end
  -- The state must outlive the pause it carries.
  state_ttl_ms = math.max(state_ttl_ms, math.ceil((until_ - now) / 1000) + 1000)
  touch()
  return snapshot({fmt(pause), fmt(now)})

elseif op == 'settle' then
  -- ARGV[10] member, ARGV[11] score: a create given up on (answer lost) counts from then.
  redis.call('ZADD', log_key, 'XX', ARGV[11], ARGV[10])
  touch()
  return snapshot({fmt(now)})

elseif op == 'refund' then
  -- ARGV[10..] members whose creates provably never counted: out of the log and the leases.
  for i = 10, #ARGV do
    redis.call('ZREM', log_key, ARGV[i])
    redis.call('ZREM', lease_key, ARGV[i])
  end
  touch()
  return snapshot({fmt(now)})

elseif op == 'release' then
  -- ARGV[10..] leases whose jobs have ended: their in-flight slots are free.
  for i = 10, #ARGV do redis.call('ZREM', lease_key, ARGV[i]) end
  touch()
  return snapshot({fmt(now)})

elseif op == 'heartbeat' then
  -- ARGV[10] the number of leases, then the leases this process still holds: their expiry
  -- moves on (re-adding one that expired while the holder stalled is deliberate: the job is
  -- still in flight); then the members of its creates still waiting for an answer: they go on
  -- counting as now. A dead process does neither: its leases expire, its entries age out.
  local leases = tonumber(ARGV[10])
  for i = 11, 10 + leases do redis.call('ZADD', lease_key, fmt(now + lease_ttl), ARGV[i]) end
  for i = 11 + leases, #ARGV do redis.call('ZADD', log_key, 'XX', fmt(now + pending), ARGV[i]) end
  touch()
  return snapshot({fmt(now)})

elseif op == 'reseed' then
  -- After a data loss: ARGV[10] the number of log entries, then member/score pairs, then leases.
  -- Each process puts back its own recent admissions, so the windows are whole again. The hold
  -- restarts: other processes may not have put theirs back yet.
  redis.call('HSET', state_key, 'hold_until', fmt(math.max(num('hold_until', 0), now + tonumber(ARGV[8]))))
  local entries = tonumber(ARGV[10])
  local i = 11
  for _ = 1, entries do
    local score = tonumber(ARGV[i + 1])
    if longest > 0 and score > now - longest then
      redis.call('ZADD', log_key, 'NX', ARGV[i + 1], ARGV[i])
    end
    i = i + 2
  end
  while i <= #ARGV do
    redis.call('ZADD', lease_key, fmt(now + lease_ttl), ARGV[i])
    i = i + 1
  end
  touch()
  return snapshot({fmt(now)})
end

return redis.error_reply('ade_async shared admission: unknown operation ' .. tostring(op))
