-- Luau has no `package` library: install gives it `package.loaded` and `package.preload`
-- and this `require`. Dotted names follow Lua 5.x's `require` (a loaded value is returned as
-- is; a loader from `package.preload` is called with the name and its result stored, `true`
-- for none). Paths (`./x`, `../x`, `@alias/x`) go through Luau's own navigator over the
-- bundle and the host's registered modules (`@host/x`); what they lack goes on to the
-- state's previous `require`, Luau's own (files), unless the installation is hermetic. Both are called through a trampoline named like the
-- caller, as the navigator resolves from the chunk that called `require`.
local package, previous, hermetic, explain, bundle_require, probe_require, trampoline_for, caller_of, during, closest = ...
local loaded, preload = package.loaded, package.preload
local type, error, sub, pcall = type, error, string.sub, pcall
local find = string.find
-- A dotted name has no `/` or `\`: any name that does (`./x`, `/abs`, `a/b`) is Luau's, and
-- gets Luau's answer, an error for a bad prefix included.
local function is_path(name)
  return sub(name, 1, 1) == "@" or find(name, "/", 1, true) ~= nil or find(name, "\\", 1, true) ~= nil
end
local trampolines = {}
-- Per caller, the paths the bundle was found to answer: a require repeated from one chunk
-- navigates once, not twice.
local answered = {}
local function path_require(name, caller)
  local call = trampolines[caller]
  if call == nil then
    call = trampoline_for(caller)
    trampolines[caller] = call
    answered[caller] = {}
  end
  if answered[caller][name] then return during(call, bundle_require, name) end
  local found, err = pcall(call, probe_require, name)
  if found then
    answered[caller][name] = true
    return during(call, bundle_require, name)
  end
  if not hermetic and type(previous) == "function" then return call(previous, name) end
  error(tostring(err) .. (hermetic and " (hermetic: the file system is not searched)" .. closest(name) or ""), 0)
end
require = function(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'require' (string expected, got " .. type(name) .. ")", 2)
  end
  if is_path(name) then
    return (path_require(name, caller_of() or "=[C]"))
  end
  local value = loaded[name]
  if value then return value end
  local loader = preload[name]
  if loader == nil then
    error("module '" .. name .. "' not found:\n\tno field package.preload['" .. name .. "']\n\t" .. explain(name), 2)
  end
  local result = loader(name, ":preload:")
  if result ~= nil then loaded[name] = result elseif loaded[name] == nil then loaded[name] = true end
  return loaded[name], ":preload:"
end
