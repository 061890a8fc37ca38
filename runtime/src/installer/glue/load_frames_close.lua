-- How a load is timed. Lua 5.4 and later use a to-be-closed variable, which sees errors without
-- catching them, so tracebacks still start where the error happened.
local frame_meta = {
  __close = function(_, err)
    if err == nil then end_load(nil) else end_load(tostring(err)) end
  end,
}
local function checked(chunk, err)
  if chunk == nil then error(err, 0) end
  return chunk
end
local function run_bundled(name, handle, path)
  begin_load(name, "bundle")
  local frame <close> = setmetatable({}, frame_meta)
  -- The chunk is called as a value, not through a named local, so that tracebacks show its
  -- frame as "in main chunk", as under a plain require.
  return checked(materialise(handle, name))(name, path)
end
local function run_native(name, handle)
  begin_load(name, "native")
  local frame <close> = setmetatable({}, frame_meta)
  local ok, value = init_native(handle)
  if not ok then error(value, 0) end
  return value
end
