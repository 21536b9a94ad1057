-- The lobby's waiting queue and pairs in Redis, shared by several lobby processes ("nodes").
-- One script, so that every operation is atomic; the rules are those of crates/lobby/src/lobby.rs:
-- FIFO, a shared interest first, random once both accept it (no interests, or waited >= wait ms),
-- never itself, never the partner just left.
-- Liveness: each node holds lobby:alive:<node>, set by 'join' and renewed by 'beat' with a TTL. A node
-- whose key expired is dead: its sockets are never matched, and the next 'beat' of any node purges them
-- (their partners on live nodes are told) and its online count. A node that finds its own key expired
-- ('lapsed') is refused until its 'beat' has purged it; it then drops its sockets.
-- Keys: lobby:seq (counter), lobby:queue (zset sid -> seq), lobby:s:<sid> (hash: interests (JSON),
-- node, since (ms, while waiting), fb (fallback tried), skipped, partner), lobby:n:<node> (set: its
-- sids), lobby:online (hash: node -> its socket count; the nodes known), lobby:alive:<node>.
-- Calls by ID: lobby:id:<ID> (string: the sid that made the ID reachable; the hash's 'reach' names it
-- back, and both go with the socket). A pending call is kept on both sockets' hashes: 'call' (the other
-- sid), 'dir' ('out' for the caller, 'in' for the callee), 'ring' (ms: when it times out).
-- ARGV: op, node, sid, wait_ms, then interests JSON ('find') or ttl_ms, count ('join', 'beat'), or ID,
-- on ('reach'), or ID, ring_ms ('call'), or accept ('answer').
-- Returns rows: {'M', to, partner, initiator, common...}, {'L', to}, {'W', ms until sid's fallback is
-- due}, {'C', online total}, {'X'} (this node had lapsed), {'R', to, from} (ring), {'K', to, reason}
-- (call ended), {'T', ms until sid's call times out}, {'E', code}.

local op, node, id, wait = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}

local function key(sid) return 'lobby:s:' .. sid end
local function members(n) return 'lobby:n:' .. n end
local function beacon(n) return 'lobby:alive:' .. n end

local living = {}
local function alive(n)
  if not n then return false end
  if living[n] == nil then living[n] = redis.call('EXISTS', beacon(n)) == 1 end
  return living[n]
end

local function get(sid)
  local h = redis.call('HMGET', key(sid), 'interests', 'since', 'skipped', 'partner', 'fb', 'node')
  return { interests = cjson.decode(h[1] or '[]'), since = tonumber(h[2] or ''), skipped = h[3] or nil,
           partner = h[4] or nil, fb = h[5] == '1', node = h[6] or nil }
end

local function accepts_random(p)
  return p.since ~= nil and (#p.interests == 0 or now - p.since >= wait)
end

local function common(a, b)
  local set, c = {}, {}
  for _, tag in ipairs(b) do set[tag] = true end
  for _, tag in ipairs(a) do if set[tag] then c[#c + 1] = tag end end
  return c
end

local function own(sid)
  redis.call('HSET', key(sid), 'node', node)
  redis.call('SADD', members(node), sid)
end

local function dequeue(sid)
  redis.call('ZREM', 'lobby:queue', sid)
  redis.call('HDEL', key(sid), 'since', 'fb')
end

local function enqueue(sid)
  local seq = redis.call('INCR', 'lobby:seq')
  redis.call('ZADD', 'lobby:queue', seq, sid)
  redis.call('HSET', key(sid), 'since', now, 'fb', '0')
end

local function notice_matched(to, partner, initiator, c)
  local n = { 'M', to, partner, initiator }
  for _, tag in ipairs(c) do n[#n + 1] = tag end
  out[#out + 1] = n
end

-- when sid's random fallback is due, if it waits with interests and it was not tried yet
local function fallback_due(sid)
  local p = get(sid)
  if p.since ~= nil and not p.fb and #p.interests > 0 then
    out[#out + 1] = { 'W', tostring(math.max(0, wait - (now - p.since))) }
  end
end

local function try_match(sid)
  local me = get(sid)
  if me.since == nil then return end
  local me_random = accepts_random(me)
  local random = nil
  local found, found_common = nil, nil
  for _, other in ipairs(redis.call('ZRANGE', 'lobby:queue', 0, -1)) do
    if other ~= sid and me.skipped ~= other then
      local them = get(other)
      if them.skipped ~= sid and alive(them.node) then
        local c = common(me.interests, them.interests)
        if #c > 0 then found, found_common = other, c; break end
        if random == nil and me_random and accepts_random(them) then
          random = other
          if #me.interests == 0 then break end
        end
      end
    end
  end
  if found == nil and random ~= nil then found, found_common = random, {} end
  if found == nil then return end
  dequeue(sid)
  dequeue(found)
  redis.call('HSET', key(sid), 'partner', found)
  redis.call('HSET', key(found), 'partner', sid)
  notice_matched(found, sid, '0', found_common)
  notice_matched(sid, found, '1', found_common)
end

-- `quiet`: sockets not to tell (they are being purged with sid)
local function leave_partner(sid, quiet)
  local partner = redis.call('HGET', key(sid), 'partner')
  if not partner then return end
  redis.call('HDEL', key(sid), 'partner')
  redis.call('HSET', key(sid), 'skipped', partner)
  if redis.call('EXISTS', key(partner)) == 1 then
    redis.call('HDEL', key(partner), 'partner')
    redis.call('HSET', key(partner), 'skipped', sid)
  end
  if not (quiet and quiet[partner]) then out[#out + 1] = { 'L', partner } end
end

-- sid's pending call ends: the other side is told reason (and sid too when it timed out)
local function end_call(sid, reason, quiet)
  local other = redis.call('HGET', key(sid), 'call')
  if not other then return end
  redis.call('HDEL', key(sid), 'call', 'dir', 'ring')
  if redis.call('HGET', key(other), 'call') == sid then redis.call('HDEL', key(other), 'call', 'dir', 'ring') end
  if not (quiet and quiet[other]) then out[#out + 1] = { 'K', other, reason } end
  if reason == 'timeout' then out[#out + 1] = { 'K', sid, reason } end
end

local function unreach(sid)
  local id = redis.call('HGET', key(sid), 'reach')
  if not id then return end
  redis.call('HDEL', key(sid), 'reach')
  if redis.call('GET', 'lobby:id:' .. id) == sid then redis.call('DEL', 'lobby:id:' .. id) end
end

-- everything about sid goes; its partner is told (unless quiet)
local function forget(sid, n, quiet)
  leave_partner(sid, quiet)
  end_call(sid, 'gone', quiet)
  unreach(sid)
  dequeue(sid)
  local skipped = redis.call('HGET', key(sid), 'skipped')
  if skipped and redis.call('HGET', key(skipped), 'skipped') == sid then
    redis.call('HDEL', key(skipped), 'skipped')
  end
  redis.call('DEL', key(sid))
  redis.call('SREM', members(n), sid)
end

-- a node's sockets, its online count and its key go at once
local function purge(n)
  local sids = redis.call('SMEMBERS', members(n))
  local quiet = {}
  for _, sid in ipairs(sids) do quiet[sid] = true end
  for _, sid in ipairs(sids) do forget(sid, n, quiet) end
  redis.call('DEL', members(n), beacon(n))
  redis.call('HDEL', 'lobby:online', n)
  living[n] = false
end

if op == 'join' or op == 'beat' then
  local ttl, count = ARGV[5], ARGV[6]
  if op == 'beat' and not alive(node) then
    purge(node)
    out[#out + 1] = { 'X' }
  end
  redis.call('SET', beacon(node), '1', 'PX', ttl)
  living[node] = true
  redis.call('HSET', 'lobby:online', node, count)
  local total = 0
  for _, n in ipairs(redis.call('HKEYS', 'lobby:online')) do
    if alive(n) then
      total = total + tonumber(redis.call('HGET', 'lobby:online', n))
    elseif op == 'beat' then
      purge(n)
    end
  end
  out[#out + 1] = { 'C', tostring(total) }
  return out
elseif op == 'leave' then
  purge(node)
  return out
end

if not alive(node) then return { { 'E', 'lapsed' } } end
if op == 'find' then
  if redis.call('HEXISTS', key(id), 'partner') == 1 then return { { 'E', 'already_matched' } } end
  own(id)
  redis.call('HSET', key(id), 'interests', ARGV[5])
  if redis.call('HEXISTS', key(id), 'since') == 0 then enqueue(id) end
  try_match(id)
  fallback_due(id)
elseif op == 'next' then
  own(id)
  leave_partner(id)
  if redis.call('HEXISTS', key(id), 'since') == 0 then enqueue(id) end
  try_match(id)
  fallback_due(id)
elseif op == 'stop' then
  leave_partner(id)
  dequeue(id)
elseif op == 'disconnect' then
  forget(id, node)
elseif op == 'reach' then
  own(id)
  unreach(id)
  if ARGV[6] == '1' then
    redis.call('SET', 'lobby:id:' .. ARGV[5], id)
    redis.call('HSET', key(id), 'reach', ARGV[5])
  end
elseif op == 'call' then
  own(id)
  local me = redis.call('HMGET', key(id), 'partner', 'call')
  if me[1] then return { { 'E', 'already_matched' } } end
  if me[2] then return { { 'E', 'call_pending' } } end
  local callee = redis.call('GET', 'lobby:id:' .. ARGV[5])
  if not callee or callee == id or redis.call('EXISTS', key(callee)) == 0 then return { { 'E', 'unreachable' } } end
  local them = redis.call('HMGET', key(callee), 'partner', 'call', 'node')
  if not alive(them[3]) then return { { 'E', 'unreachable' } } end
  if them[1] or them[2] then return { { 'E', 'busy' } } end
  local ring = tonumber(ARGV[6])
  redis.call('HSET', key(id), 'call', callee, 'dir', 'out', 'ring', now + ring)
  redis.call('HSET', key(callee), 'call', id, 'dir', 'in', 'ring', now + ring)
  out[#out + 1] = { 'R', callee, id }
  out[#out + 1] = { 'T', tostring(ring) }
elseif op == 'answer' then
  local me = redis.call('HMGET', key(id), 'call', 'dir')
  if not me[1] or me[2] ~= 'in' then return { { 'E', 'no_call' } } end
  local caller = me[1]
  if ARGV[5] ~= '1' then
    end_call(id, 'declined')
  else
    redis.call('HDEL', key(id), 'call', 'dir', 'ring')
    redis.call('HDEL', key(caller), 'call', 'dir', 'ring')
    leave_partner(id)
    leave_partner(caller)
    dequeue(id)
    dequeue(caller)
    redis.call('HSET', key(id), 'partner', caller)
    redis.call('HSET', key(caller), 'partner', id)
    notice_matched(id, caller, '0', {})
    notice_matched(caller, id, '1', {})
  end
elseif op == 'cancel' then
  if redis.call('HGET', key(id), 'dir') ~= 'out' then return { { 'E', 'no_call' } } end
  end_call(id, 'canceled')
elseif op == 'ring' then
  local me = redis.call('HMGET', key(id), 'dir', 'ring')
  if me[1] == 'out' then
    local left = tonumber(me[2]) - now
    if left <= 0 then end_call(id, 'timeout') else out[#out + 1] = { 'T', tostring(left) } end
  end
elseif op == 'fallback' then
  local p = get(id)
  if p.since ~= nil and not p.fb and #p.interests > 0 then
    if now - p.since >= wait then
      redis.call('HSET', key(id), 'fb', '1')
      try_match(id)
    else
      fallback_due(id)
    end
  end
end
return out
