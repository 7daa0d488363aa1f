"""Judging through the providers' batch APIs (`overseer judge --batch`): clients.py speaks Anthropic's Message
Batches and OpenAI's Batch API, replay.py answers the judges' calls from the run store, driver.py is one
poll–ingest–submit step of a run."""
