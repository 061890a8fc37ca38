return { from = "a.lua" }
