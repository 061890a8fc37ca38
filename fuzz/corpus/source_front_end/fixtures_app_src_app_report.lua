local util = require("app.util")

local report = {}

function report.render(items)
  local lines = {}
  for i, item in ipairs(items) do
    lines[#lines + 1] = string.format("%d. %-6s %8.2f", i, item.name, item.area)
  end
  lines[#lines + 1] = string.format("   %-6s %8.2f", "sum", util.sum(items, "area"))
  return table.concat(lines, "\n")
end

return report
