"""The Textual review app (installed as overseer.tui)."""
