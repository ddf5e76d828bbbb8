-- What a claim hands the worker, one field of the task record (spec): its fields joined by tabs
-- in the order of wire.SPEC_FIELDS, the arguments last (fn, timeout and batch hold no tab,
-- kwargs is JSON with its tabs escaped). Included by enqueue, and by claim for records written
-- before spec existed.
local function task_spec(fn, timeout, batch, kwargs, args)
  return fn .. '\t' .. timeout .. '\t' .. batch .. '\t' .. kwargs .. '\t' .. args
end
