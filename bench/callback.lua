-- wrk script: every request is a distinct, correctly signed SCAN push (plaintext mode signs
-- the query only, so one signature serves every body). Arguments: the signed query string.
local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  query = args[1]
  created = os.time()
  counter = 0
end

function request()
  counter = counter + 1
  local body = string.format(
    "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>" ..
    "<FromUserName><![CDATA[obench%d_%d]]></FromUserName>" ..
    "<CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType>" ..
    "<Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[scene%d]]></EventKey></xml>",
    thread_id, counter, created, counter % 100)
  return wrk.format("POST", "/wechat/callback?" .. query, {["Content-Type"] = "text/xml"}, body)
end
