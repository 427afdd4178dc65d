-- The tool calls a model asked for in its answer ([{id, name, arguments}]); never run by PromptLab.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS tool_calls jsonb;
