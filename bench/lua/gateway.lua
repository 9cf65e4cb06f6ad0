-- The Lua-filter equivalent of the gateway's request path, as an Envoy user would write it:
-- buffer the body, pick a model 90/10 at random, rewrite the first "model" member with
-- string.gsub, inject the provider key and the cluster header. It does strictly less than
-- the wasm filter: no JSON validation (a "model" inside a message can be hit), no
-- max_tokens/temperature/stream_options edits, no metrics, no circuit breaker.
local KEY = "Bearer " .. (os.getenv("HOLYSHEEP_API_KEY") or "")

function envoy_on_request(handle)
  local headers = handle:headers()
  if headers:get(":method") ~= "POST" then
    return
  end
  local body = handle:body() -- waits for the whole body (Envoy buffers it)
  if body == nil then
    return
  end
  local text = body:getBytes(0, body:length())
  local model = "deepseek-v3.2"
  if math.random() < 0.9 then
    model = "gpt-4.1"
  end
  local out, n = string.gsub(text, '"model"%s*:%s*"[^"]*"', '"model":"' .. model .. '"', 1)
  if n > 0 then
    body:setBytes(out)
    headers:replace("content-length", tostring(#out))
  end
  headers:replace("authorization", KEY)
  headers:replace("x-ai-gateway-cluster", "mock")
end
