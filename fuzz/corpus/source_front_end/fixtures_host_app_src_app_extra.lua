EXTRA_LOADED = true
return { name = "extra" }
