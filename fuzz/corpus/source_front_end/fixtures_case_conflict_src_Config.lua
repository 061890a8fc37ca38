return { source = "Config.lua" }
