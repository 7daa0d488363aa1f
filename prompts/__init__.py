"""Data package: versioned prompt files and shipped specs (installed as overseer.prompts)."""
