"""Edge-case memory (installed as overseer.memory)."""
