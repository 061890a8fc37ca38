local util = {}

function util.round(x, places)
  local factor = 10 ^ (places or 0)
  return math.floor(x * factor + 0.5) / factor
end

function util.sum(list, field)
  local total = 0
  for _, item in ipairs(list) do
    total = total + item[field]
  end
  return total
end

function util.fail(message)
  error("util failure: " .. message)
end

return util
