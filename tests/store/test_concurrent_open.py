"""Opening a new workspace from many places at once: every opener succeeds, the schema is migrated once, and
every opener reads the same whole secret key (issue 10 item 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from overseer.store import open_store
from overseer.store.schema import MIGRATIONS
from overseer.store.secret import KEY_BYTES, workspace_secret

ROOT = Path(__file__).resolve().parents[2]

# Each process waits for a "go" file, so all of them open the store and the secret within a millisecond or two.
# 24 of them: with the old open (schema version read before the lock) this failed in each of three tries.
OPENER = """
import os, sys, time
from pathlib import Path
workspace, go = Path(sys.argv[1]), Path(sys.argv[2])
from overseer.store import open_store
from overseer.store.secret import workspace_secret
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.001)
key = workspace_secret(workspace)
store = open_store(workspace)
version = store.db.schema_version()
store.create_run(input_path=None, input_sha256=None, output_path=None, config={"pid": os.getpid()})
store.close()
print(key.hex(), version)
"""


def test_many_processes_open_a_new_workspace_at_once(tmp_path: Path):
    workspace, go = tmp_path / "ws", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(workspace), str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(24)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.01)  # every interpreter started and waiting
    go.touch()
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err for _, err in outputs if err]
    lines = {out.strip() for out, _ in outputs}
    assert len(lines) == 1, lines  # one key, one schema version, for everyone
    key_hex, version = lines.pop().split()
    assert bytes.fromhex(key_hex) == (workspace / "secret.key").read_bytes()
    assert len(key_hex) == 2 * KEY_BYTES and int(version) == len(MIGRATIONS)
    store = open_store(workspace)
    try:
        assert len(store.list_runs()) == len(procs)
    finally:
        store.close()
    assert not [p.name for p in workspace.iterdir() if p.name.startswith(".secret.")]  # no temporary left


def test_many_threads_open_a_new_workspace_at_once(tmp_path: Path):
    workspace, n = tmp_path / "ws", 16
    barrier, keys, errors = threading.Barrier(n), [], []

    def open_both() -> None:
        try:
            barrier.wait()
            keys.append(workspace_secret(workspace))
            open_store(workspace).close()
        except BaseException as exc:  # noqa: BLE001 - collected and shown by the assertion below
            errors.append(repr(exc))

    threads = [threading.Thread(target=open_both) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(keys) == n and len(set(keys)) == 1 and len(keys[0]) == KEY_BYTES


def test_eight_cli_commands_on_a_new_workspace_all_succeed(tmp_path: Path):
    """The acceptance case: `runs list` x4 and `judge --backend scripted:echo` x4, started together."""
    workspace = tmp_path / "ws"
    examples = ROOT / "examples" / "em_samples.jsonl"
    commands = [["runs", "list", "--workspace", str(workspace)]] * 4 + [
        ["judge", str(examples), "--backend", "scripted:echo", "--label-field", "label", "--workspace",
         str(workspace), "-o", str(tmp_path / f"out-{i}.jsonl")] for i in range(4)]
    env = {**os.environ, "COLUMNS": "200"}
    procs = [subprocess.Popen([sys.executable, "-m", "overseer", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for args in commands]
    outputs = [p.communicate(timeout=300) for p in procs]
    failures = [(args[:2], p.returncode, err[-500:]) for args, p, (_, err) in zip(commands, procs, outputs,
                                                                                   strict=True) if p.returncode]
    assert failures == []
    for i in range(4):
        assert len((tmp_path / f"out-{i}.jsonl").read_text(encoding="utf-8").splitlines()) == 12
