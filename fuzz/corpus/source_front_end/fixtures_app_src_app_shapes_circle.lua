local Circle = {}
Circle.__index = Circle

function Circle.new(r)
  return setmetatable({ name = "circle", r = r }, Circle)
end

function Circle:area()
  return math.pi * self.r * self.r
end

return Circle
