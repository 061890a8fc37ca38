local helpers = require("plugins.helpers")
return { greet = function() return helpers.format("alpha") end }
