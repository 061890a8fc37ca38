UTIL_LOADS = (UTIL_LOADS or 0) + 1
return { double = function(x) return 2 * x end }
