-- The message handler: the error as text, with a traceback, as `lua` prints it (Luau's
-- traceback gets the same `stack traceback:` heading).
local traceback, getmetatable, tostring, type = debug.traceback, getmetatable, tostring, type
local luau = _VERSION:sub(1, 4) == "Luau"
local lua51 = _VERSION == "Lua 5.1"
return function(err)
  local message = err
  if type(err) ~= "string" and type(err) ~= "number" then
    -- lua 5.1 keeps such an error as it is; later ones show its __tostring without a traceback
    if lua51 then return "(error object is not a string)" end
    local meta = getmetatable(err)
    if meta and meta.__tostring then
      local text = tostring(err)
      if type(text) == "string" then return text end
    end
    message = "(error object is a " .. type(err) .. " value)"
  end
  if luau then return message .. "\nstack traceback:\n" .. traceback("", 2):gsub("^\n", "") end
  return traceback(message, 2)
end
