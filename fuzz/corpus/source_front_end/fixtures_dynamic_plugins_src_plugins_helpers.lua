return { format = function(name) return "hello from " .. name end }
