local greeting = require("app.greeting")

return {
  start = function()
    print(greeting.text())
  end,
}
