-- The pattern functions of the sandbox, each refusing a call whose worst case exceeds a
-- budget of steps: backtracking over a subject of n bytes costs up to n per `*`, `+` or `-`
-- in the pattern (and 2 per `?`), and `gsub` and `gmatch` try every position. Names and
-- paths are short, so the idioms of module-relative requires stay far below it.
local string, error, tostring, type = string, error, tostring, type
local sub, len = string.sub, string.len
local BUDGET = 1e8
local function cost(subject, pattern, every_position)
  if type(subject) ~= "string" and type(subject) ~= "number" then return end
  if type(pattern) ~= "string" and type(pattern) ~= "number" then return end
  subject, pattern = tostring(subject), tostring(pattern)
  local n, steps, i, plen = len(subject) + 1, len(pattern) + 1, 1, len(pattern)
  while i <= plen do
    local c = sub(pattern, i, i)
    if c == "%" then
      i = i + 2
    elseif c == "[" then
      i = i + 1
      if sub(pattern, i, i) == "^" then i = i + 1 end
      if sub(pattern, i, i) == "]" then i = i + 1 end
      while i <= plen and sub(pattern, i, i) ~= "]" do
        if sub(pattern, i, i) == "%" then i = i + 1 end
        i = i + 1
      end
      i = i + 1
    else
      if c == "*" or c == "+" or c == "-" then steps = steps * n elseif c == "?" then steps = steps * 2 end
      i = i + 1
    end
    if steps > BUDGET then break end
  end
  if every_position then steps = steps * n end
  if steps > BUDGET then
    error("pattern too costly for a computed require name (" .. len(pattern) .. "-byte pattern on a " .. (n - 1) .. "-byte string)", 3)
  end
end
for name, every_position in pairs({ find = false, match = false, gmatch = true, gsub = true }) do
  local real = string[name]
  string[name] = function(s, p, ...)
    cost(s, p, every_position)
    return real(s, p, ...)
  end
end
