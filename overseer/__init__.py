"""overseer: a self-improving LLM oversight agent."""

__version__ = "0.1.0"
