"""PromptLab: LLM prompt templates run as durable, cheap, observable jobs."""

__version__ = "0.1.0"
