-- Argo CD health check for the modelarts.mlops.dev resources (the same script serves all four kinds).
-- Without one, Argo CD counts unknown custom resources as Healthy at once and sync waves do not wait.
local hs = {status = "Progressing", message = "waiting for the operator"}
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "deleting the cloud side"
  return hs
end
if obj.status == nil then
  return hs
end
if obj.status.observedGeneration == nil or obj.status.observedGeneration ~= obj.metadata.generation then
  hs.message = "the operator has not seen the latest spec yet"
  return hs
end
local terminal = {Failed = true, Terminated = true, MaxRuntimeExceeded = true, InvalidSpec = true,
                  CloudResourceMissing = true, Stopped = true, DependencyFailed = true}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      if condition.status == "True" then
        hs.status = "Healthy"
      elseif terminal[condition.reason] then
        hs.status = "Degraded"
      end
      hs.message = (condition.reason or "") .. ": " .. (condition.message or "")
      return hs
    end
  end
end
return hs
