#!/usr/bin/env lua
-- A module with a shebang line, runnable with `luabundle run app.bundle -m app.tool`.
local util = require("app.util")
local name, path = ...
print("tool module " .. tostring(name) .. " from " .. tostring(path))
local info = debug.getinfo(1, "S")
print("tool source " .. info.source)
if arg and arg[1] == "fail" then
  util.fail("asked to fail")
end
return { ok = true }
