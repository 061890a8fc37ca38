-- Keeps only the preload searcher, then explains what is missing. (`package.loaders` in
-- Lua 5.1 and LuaJIT; before 5.4 a searcher's message carries its own line break.)
local explain = ...
local prefix = _VERSION == "Lua 5.4" and "" or "\n\t"
local key = package.searchers and "searchers" or "loaders"
local preload_searcher = package[key][1]
package[key] = { preload_searcher, function(name) return prefix .. explain(name) end }
