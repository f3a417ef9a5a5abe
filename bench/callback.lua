-- wrk script: every request is a distinct SCAN push under its own signed query, as WeChat
-- sends them. Arguments: a file of signed query strings, one a line, and the number of
-- wrk threads; each thread takes every n-th line, so no query is used twice.
local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  local threads = tonumber(args[2])
  queries = {}
  local line_number = 0
  for line in io.lines(args[1]) do
    if line_number % threads == thread_id then
      queries[#queries + 1] = line
    end
    line_number = line_number + 1
  end
  created = os.time()
  counter = 0
end

function request()
  counter = counter + 1
  -- Past the end of the list a query comes round again, and is refused as a replay: the
  -- summary counts those as non-2xx answers.
  local query = queries[(counter - 1) % #queries + 1]
  local body = string.format(
    "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>" ..
    "<FromUserName><![CDATA[obench%d_%d]]></FromUserName>" ..
    "<CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType>" ..
    "<Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[scene%d]]></EventKey></xml>",
    thread_id, counter, created, counter % 100)
  return wrk.format("POST", "/wechat/callback?" .. query, {["Content-Type"] = "text/xml"}, body)
end
