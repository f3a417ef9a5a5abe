-- wrk script: each thread asks for its own range of distinct scenes, once each, and stops
-- when all its answers are in, so wrk's elapsed time is the wall time of the whole set.
-- Arguments: path prefix (e.g. /api/qrcode?scene_id=), scenes per thread.
local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  prefix = args[1]
  per_thread = tonumber(args[2])
  sent = 0
  received = 0
end

function request()
  sent = sent + 1
  -- Connections still open once the range is sent repeat its first scene: a cache hit.
  local n = sent <= per_thread and sent or 1
  return wrk.format("GET", prefix .. (thread_id * per_thread + n))
end

function response(status, headers, body)
  received = received + 1
  if received >= per_thread then
    wrk.thread:stop()
  end
end
