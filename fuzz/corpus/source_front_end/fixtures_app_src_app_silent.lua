-- Returns nothing: require yields true, as with Lua's own loaders.
SILENT_RAN = true
