return "missing"
