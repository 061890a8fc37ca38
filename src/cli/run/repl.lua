-- The interactive prompt: `lua`'s read-eval-print loop, with the prompts `_PROMPT` and
-- `_PROMPT2`, expressions printed, incomplete statements continued on the next line.
local run, report = ...
local load, loadstring, print, select, type = load, loadstring, print, select, type
local stdin, stdout = io.stdin, io.stdout
local lua51 = _VERSION == "Lua 5.1"
local compile = lua51 and loadstring or load
local line_format = lua51 and "*l" or "l"
local function prompt(first)
  local text = first and (_PROMPT or "> ") or (_PROMPT2 or ">> ")
  stdout:write(tostring(text))
  stdout:flush()
  return stdin:read(line_format)
end
local function incomplete(message)
  return type(message) == "string" and (message:find("<eof>'?$") ~= nil)
end
while true do
  local line = prompt(true)
  if not line then stdout:write("\n") stdout:flush() return end
  -- every lua.c since 5.1 takes a first line "=expr" as "return expr"
  if line:sub(1, 1) == "=" then line = "return " .. line:sub(2) end
  local chunk, err = compile("return " .. line, "=stdin")
  if not chunk then
    local code = line
    while true do
      chunk, err = compile(code, "=stdin")
      if chunk or not incomplete(err) then break end
      local more = prompt(false)
      if not more then break end
      code = code .. "\n" .. more
    end
  end
  if chunk then
    run(chunk)
  else
    report(err)
  end
end
