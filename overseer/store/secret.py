"""The workspace secret: the key of the per-sample delimiters, kept in the workspace so prompts (and cache keys)
are stable across runs.

It appears whole or not at all: the key is written to a temporary file, which is then hard-linked to its name.
`link` fails when the name exists, so of several commands creating it at once one wins and every other reads the
winner's key; no reader can see a half-written file."""

from __future__ import annotations

import os
import secrets
import tempfile
from contextlib import suppress
from pathlib import Path

from overseer.errors import StoreError

KEY_BYTES = 32


def workspace_secret(workspace: Path) -> bytes:
    path = workspace / "secret.key"
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        _create(path)
        key = path.read_bytes()
    if len(key) < KEY_BYTES:
        # Empty or short is damage (an older overseer could be killed between creating and writing the file).
        # Regenerating here could race another command doing the same; only the user can say it is safe.
        raise StoreError(f"{path} holds {len(key)} bytes, not a {KEY_BYTES}-byte key: delete it and the next "
                         "command makes a new one (cached verdicts made with the old key are judged again)")
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
        with suppress(FileExistsError):  # another command made it first: use theirs
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
