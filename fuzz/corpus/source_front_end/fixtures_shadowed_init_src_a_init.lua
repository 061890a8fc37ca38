return { from = "a/init.lua" }
