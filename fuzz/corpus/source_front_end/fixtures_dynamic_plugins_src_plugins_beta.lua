local helpers = require("plugins.helpers")
return { greet = function() return helpers.format("beta") end }
