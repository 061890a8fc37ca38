print("a -> " .. require("a").from)
print("a.init -> " .. require("a.init").from)
