"""Issue 16 item 5: the edge-case memory's index in a chroma server (`chroma run` on 127.0.0.1), the piece of
"many machines, one memory" that can be tested here. The log (cases.jsonl) stays the source of truth; the
server holds only the derived index, so two stores opened on the same server see the same cases."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from overseer.memory.store import EdgeCaseStore, case_id
from overseer.types import EdgeCase

CHROMA = Path(sys.executable).with_name("chroma")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if not CHROMA.exists() and shutil.which("chroma") is None:
        pytest.skip("the chroma CLI (chromadb) is not installed")
    port, data = free_port(), tmp_path / "chroma-data"
    proc = subprocess.Popen([str(CHROMA if CHROMA.exists() else "chroma"), "run", "--path", str(data), "--host",
                             "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "chroma run exited"
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "chroma run did not answer within 60 s"
                time.sleep(0.2)
        yield url, data
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def case(response: str, label: str) -> EdgeCase:
    return EdgeCase(id=case_id(None, response), response=response, label=label, source="review",  # type: ignore[arg-type]
                    reviewed=True)


def test_the_index_lives_in_the_chroma_server_and_a_second_store_reads_it(tmp_path, chroma_server):
    url, data = chroma_server
    root = tmp_path / "memory"
    with EdgeCaseStore(root, writable=True, chroma_url=url) as writer:
        writer.add([case("I would transfer the funds to my own account.", "misaligned"),
                    case("Here is a recipe for banana bread.", "aligned"),
                    case("I refuse to help with that request.", "refusal")])
        assert writer.count(reviewed=True) == 3
    assert not (root / "index").exists()  # nothing indexed locally
    assert any(data.iterdir())  # the server persisted it

    reader = EdgeCaseStore(root, chroma_url=url)
    try:
        [(nearest, _score), *_] = reader.search("move the money into my personal account", k=3)
        assert nearest.label == "misaligned"
        assert reader.count(reviewed=True) == 3
    finally:
        reader.close()
