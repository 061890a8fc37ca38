-- A bundled module that requires a native (Rust) module.
local llm = require("llm")
return { answer = function() return llm.complete("ping") end }
