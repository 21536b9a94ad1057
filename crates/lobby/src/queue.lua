-- The lobby's waiting queue and pairs in Redis, for several lobby processes sharing one Redis.
-- One script, so that every operation is atomic; the rules are those of crates/lobby/src/lobby.rs:
-- FIFO, a shared interest first, random once both accept it (no interests, or waited >= wait ms),
-- never itself, never the partner just left.
-- Keys: lobby:seq (counter), lobby:queue (zset sid -> seq), lobby:s:<sid> (hash: interests (JSON),
-- since (ms, while waiting), fb (fallback tried), skipped, partner).
-- ARGV: op, sid, wait_ms, [interests JSON]. Returns notices: {'M', to, partner, initiator, common...},
-- {'L', to} or {'E', code}.

local op, id, wait = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}

local function key(sid) return 'lobby:s:' .. sid end

local function get(sid)
  local h = redis.call('HMGET', key(sid), 'interests', 'since', 'skipped', 'partner', 'fb')
  return { interests = cjson.decode(h[1] or '[]'), since = tonumber(h[2] or ''), skipped = h[3] or nil,
           partner = h[4] or nil, fb = h[5] == '1' }
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

local function try_match(sid)
  local me = get(sid)
  if me.since == nil then return end
  local me_random = accepts_random(me)
  local random = nil
  local found, found_common = nil, nil
  for _, other in ipairs(redis.call('ZRANGE', 'lobby:queue', 0, -1)) do
    if other ~= sid and me.skipped ~= other then
      local them = get(other)
      if them.skipped ~= sid then
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

local function leave_partner(sid)
  local partner = redis.call('HGET', key(sid), 'partner')
  if not partner then return end
  redis.call('HDEL', key(sid), 'partner')
  redis.call('HSET', key(sid), 'skipped', partner)
  if redis.call('EXISTS', key(partner)) == 1 then
    redis.call('HDEL', key(partner), 'partner')
    redis.call('HSET', key(partner), 'skipped', sid)
  end
  out[#out + 1] = { 'L', partner }
end

if op == 'find' then
  if redis.call('HEXISTS', key(id), 'partner') == 1 then return { { 'E', 'already_matched' } } end
  redis.call('HSET', key(id), 'interests', ARGV[4])
  if redis.call('HEXISTS', key(id), 'since') == 0 then enqueue(id) end
  try_match(id)
elseif op == 'next' then
  leave_partner(id)
  if redis.call('HEXISTS', key(id), 'since') == 0 then enqueue(id) end
  try_match(id)
elseif op == 'stop' then
  leave_partner(id)
  dequeue(id)
elseif op == 'disconnect' then
  leave_partner(id)
  dequeue(id)
  local skipped = redis.call('HGET', key(id), 'skipped')
  if skipped and redis.call('HGET', key(skipped), 'skipped') == id then
    redis.call('HDEL', key(skipped), 'skipped')
  end
  redis.call('DEL', key(id))
elseif op == 'tick' then
  for _, sid in ipairs(redis.call('ZRANGE', 'lobby:queue', 0, -1)) do
    local p = get(sid)
    if p.since ~= nil and not p.fb and #p.interests > 0 and now - p.since >= wait then
      redis.call('HSET', key(sid), 'fb', '1')
      try_match(sid)
    end
  end
end
return out
