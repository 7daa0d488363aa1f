"""The run store: the only code that speaks SQL."""
