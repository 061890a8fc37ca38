-- Plugins are found by name at run time: bundle them with --include 'plugins.*'.
local greetings = {}
for _, name in ipairs({ "alpha", "beta" }) do
  greetings[#greetings + 1] = require("plugins." .. name).greet()
end
print(table.concat(greetings, ", "))
