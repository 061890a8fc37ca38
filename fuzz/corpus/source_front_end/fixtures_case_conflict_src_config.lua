return { source = "config.lua" }
