"""The edge-case memory: a chromadb index over an append-only JSONL log, which is the source of truth.

Layout of WORKSPACE/memory/:
    cases.jsonl   one operation per line: {"op": "put", "case": {...}} or {"op": "rm", "id": "..."}
    index/        chromadb PersistentClient (cosine space), two collections: reviewed and unreviewed cases.
                  Keeping them apart makes the poisoning guard structural (retrieval queries only the
                  reviewed index) and fast: chroma's metadata filter made a query ~15x slower at 10k cases.
                  Each entry's metadata holds the case's JSON (`case`) and its `origin`; it has no chroma
                  document, because chroma full-text-indexes documents, which we never search, and that index
                  was half the cost of an insert (indexes written before keep their documents and still read).
                  Rebuilt from cases.jsonl by `rebuild()`.
    meta.json     which embedding built the index, how many bytes of the log it holds and a checksum of their
                  end (a log shorter than that, or with another end, was truncated or replaced: an error, never
                  a silent loss), and how many cases each collection held (an index that lost them is rebuilt)
    writer.lock   one writer at a time (flock); readers take it only to repair (replay or rebuild)

A write appends to the log (fsync) before touching the index, and records the indexed log size after; a
writer that finds the log ahead of the index (a crash between the two) replays the tail on open."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from overseer.embeddings import DEFAULT_EMBEDDING, Embedder, make_embedder
from overseer.errors import ConfigError, OverseerError
from overseer.memory import RELEVANCE_FLOOR
from overseer.types import EdgeCase, sha256_text

COLLECTIONS = {True: "edge_cases_reviewed", False: "edge_cases_unreviewed"}
BATCH = 2000
TAIL_BYTES = 65536  # how much of the log's end meta.json's checksum covers: O(1) to check at every open
log = logging.getLogger(__name__)
REBUILD_HINT = "`overseer memory rebuild` (add --embedding NAME if the memory was not built with wordllama)"


class MemoryLockedError(OverseerError):
    """Another process is writing this memory."""


def case_id(prompt: str | None, response: str, record_id: str | None = None, *, scope: str | None = None) -> str:
    """A record that carries its own id keeps it within its `scope` (a seed file's identity: re-seeding the same
    file updates, never duplicates, while the same id in another file is another case). Without an id, the same
    normalized text (case and whitespace folded) is the same case, whichever file it came from."""
    if record_id is not None:
        key = f"id:{record_id}" if scope is None else f"scope:{scope}\x00id:{record_id}"
        return "ec-" + sha256_text(key)[:20]
    return "ec-" + sha256_text(text_key(prompt, response))[:20]


def text_key(prompt: str | None, response: str) -> str:
    """The same prompt and response with case and whitespace folded: what "the same case" means without ids."""
    return " ".join(f"{prompt or ''}\n{response}".lower().split())


@dataclass
class AddReport:
    added: int = 0
    updated: int = 0
    skipped: int = 0  # already present with identical content
    kept_reviewed: list[str] = field(default_factory=list)  # reviewed cases an unreviewed copy did not replace


class EdgeCaseStore:
    def __init__(self, root: str | Path, *, embedding: str | None = None, writable: bool = False,
                 lock_timeout: float = 30.0, embedder: Embedder | None = None, repair: bool = False,
                 chroma_url: str | None = None) -> None:
        """`repair=True` (writers only, for `rebuild`) accepts the log as it is, whatever meta.json says.
        `chroma_url` (http://HOST:PORT) keeps the index in a chroma server (`chroma run`) instead of `index/`."""
        self.root = Path(root)
        self.chroma_url = chroma_url
        self.log_path, self.meta_path = self.root / "cases.jsonl", self.root / "meta.json"
        self.writable, self.repair = writable, repair
        self._lock_file: Any = None
        self._index_checked = False
        if writable:
            self.root.mkdir(parents=True, exist_ok=True)
            self._acquire_lock(lock_timeout)
        try:
            self._open(embedding, embedder)
        except BaseException:
            self.close()  # never keep the writer lock of a store that failed to open
            raise

    def _open(self, embedding: str | None, embedder: Embedder | None) -> None:
        self.meta = self._read_meta()
        chosen = embedding or self.meta.get("embedding") or DEFAULT_EMBEDDING
        if self.meta.get("embedding") not in (None, chosen):
            raise ConfigError(f"the memory at {self.root} was built with embedding {self.meta['embedding']!r}, not "
                              f"{chosen!r}; mixing them would make similarity meaningless (rebuild it with "
                              f"`overseer memory rebuild --embedding {chosen}`)")
        self.embedding_name = chosen
        self._embedder = embedder
        self._collections: dict[bool, Any] = {}
        if self.repair and self.writable:
            return  # the caller rebuilds everything from the log next
        self._check_log()
        if self.writable:
            self._repair()
        elif int(self.meta.get("indexed_bytes", 0)) < self._log_size():
            self._as_writer(self._repair)

    def _repair(self) -> None:
        self._check_index()
        self._catch_up()

    def _as_writer(self, repair: Any) -> None:
        """A crash between a log append and its index update, or a deleted index, leaves readers a stale index
        until some writer opens the memory; a reader that finds the writer lock free does the repair itself."""
        try:
            self._acquire_lock(0.0)
        except MemoryLockedError:
            return  # a writer is at work, and it checks and replays on its own open
        try:
            self.writable = True
            self.meta = self._read_meta()  # a writer may have changed the memory since this reader opened it
            self._check_log()
            repair()
        finally:
            self.writable = False
            self.close()

    # --- integrity: the log is the truth, meta.json says what the index was built from -------------------------
    def _check_log(self) -> None:
        size, indexed = self._log_size(), int(self.meta.get("indexed_bytes", 0))
        if not self.meta and size:
            raise OverseerError(f"{self.meta_path} is missing but {self.log_path} holds cases: recreate it with "
                                f"{REBUILD_HINT}")
        recovery = (f"restore it from a backup (`overseer memory export` writes one), or keep what is left with "
                    f"{REBUILD_HINT}")
        if size < indexed:
            raise OverseerError(f"{self.log_path} is {size} bytes but the memory had indexed {indexed}: it was "
                                f"truncated or replaced; {recovery}")
        expected = self.meta.get("log_tail_sha256")
        if expected is not None and self._tail_sha(indexed) != expected:
            raise OverseerError(f"{self.log_path} does not end as the memory last wrote it (checksum of its first "
                                f"{indexed} bytes differs): it was edited or replaced; {recovery}")

    def _tail_sha(self, upto: int) -> str:
        if not upto:
            return sha256_text("")
        with self.log_path.open("rb") as f:
            f.seek(max(0, upto - TAIL_BYTES))
            return sha256_text(f.read(upto - max(0, upto - TAIL_BYTES)).decode("utf-8", "replace"))

    def _check_index(self) -> None:
        """An index that lost cases the log holds (deleted, or swapped for another) is rebuilt from the log,
        never served as a smaller memory."""
        self._index_checked = True
        expected = self.meta.get("index_counts")
        if expected is None:  # written before counts were recorded: the directory is all there is to check
            if (self.root / "index").exists() or not self._log_size():
                return
            found: list[int] | str = "no index directory"
        else:
            found = [self.index(True).count(), self.index(False).count()]
            if found == expected:
                return
        log.warning("the memory index at %s holds %s cases where %s were recorded: rebuilding it from %s",
                    self.root / "index", found, expected, self.log_path)
        self.rebuild()

    # --- lifecycle ------------------------------------------------------------------------------------------
    def _acquire_lock(self, timeout: float) -> None:
        handle = (self.root / "writer.lock").open("a+")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "?"
                    handle.close()
                    raise MemoryLockedError(
                        f"the memory at {self.root} is being written by another overseer process (pid {holder}); "
                        f"waited {timeout:.0f}s — try again when it finishes") from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def close(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> EdgeCaseStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = make_embedder(self.embedding_name)
        return self._embedder

    def _client(self) -> Any:
        import chromadb
        from chromadb.config import Settings

        # Telemetry off: an offline run must not even try the network. Embeddings are always passed in,
        # so chroma never loads (or downloads) its own default model.
        if self.chroma_url:
            from urllib.parse import urlsplit

            url = urlsplit(self.chroma_url)
            return chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                       ssl=url.scheme == "https", settings=Settings(anonymized_telemetry=False))
        return chromadb.PersistentClient(path=str(self.root / "index"), settings=Settings(anonymized_telemetry=False))

    def index(self, reviewed: bool) -> Any:
        """The chroma collection of reviewed (or unreviewed) cases."""
        if not self._index_checked and not self.writable:
            self._index_checked = True
            self._as_writer(self._check_index)
        if reviewed not in self._collections:
            try:
                self._collections[reviewed] = self._client().get_or_create_collection(
                    COLLECTIONS[reviewed], metadata={"hnsw:space": "cosine"}, embedding_function=None)
            except Exception as exc:  # chroma's errors for a damaged index have no common base class
                raise OverseerError(f"the memory index at {self.root / 'index'} is unreadable ({exc}); rebuild it "
                                    f"from the log with {REBUILD_HINT}") from exc
        return self._collections[reviewed]

    def _read_meta(self) -> dict[str, Any]:
        if not self.meta_path.exists():
            return {}
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError(f"a JSON object was expected, not {type(meta).__name__}")
            int(meta.get("indexed_bytes", 0))
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            if self.repair:
                return {}
            raise OverseerError(f"{self.meta_path} is unreadable ({exc}); it only describes the index: recreate "
                                f"it with {REBUILD_HINT}") from exc
        return meta

    def _commit_meta(self) -> None:
        """After every index change: what the index now holds, and the log state it was built from."""
        size = self._log_size()
        self._write_meta(indexed_bytes=size, log_tail_sha256=self._tail_sha(size),
                         index_counts=[self.index(True).count(), self.index(False).count()])

    def _write_meta(self, **changes: Any) -> None:
        self.meta.update(changes, embedding=self.embedding_name)
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.meta), encoding="utf-8")
        os.replace(tmp, self.meta_path)  # atomic: a crash leaves the old or the new meta, never half of one

    def _require_writer(self) -> None:
        if not self.writable:
            raise OverseerError("this memory was opened read-only")

    # --- the log ------------------------------------------------------------------------------------------
    def _log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def _read_log(self, start: int = 0) -> Iterator[dict[str, Any]]:
        if not self.log_path.exists():
            return
        with self.log_path.open("rb") as f:
            f.seek(start)
            offset = start
            for raw in f:
                if raw.endswith(b"\n"):
                    try:
                        yield json.loads(raw)
                    except ValueError as exc:
                        raise OverseerError(f"{self.log_path}: unreadable entry at byte {offset} ({exc}); "
                                            "repair or remove that line, then `overseer memory rebuild`") from exc
                offset += len(raw)

    def _repair_torn_tail(self) -> None:
        data_size = self._log_size()
        if not data_size:
            return
        with self.log_path.open("rb+") as f:
            f.seek(max(0, data_size - 1))
            if f.read(1) == b"\n":
                return
            f.seek(0)
            content = f.read()
            f.truncate(content.rfind(b"\n") + 1)

    def _append(self, ops: list[dict[str, Any]] | list[str]) -> None:
        """Log operations (dicts, or put lines `_put_line` already serialised), durably, before the index."""
        with self.log_path.open("a", encoding="utf-8") as f:
            f.writelines(op if isinstance(op, str) else json.dumps(op, default=str) + "\n" for op in ops)
            f.flush()
            os.fsync(f.fileno())

    def _catch_up(self) -> None:
        """Replay log entries the index missed (a crash after the log write, before the index write)."""
        self._repair_torn_tail()
        indexed = int(self.meta.get("indexed_bytes", 0))
        if indexed < self._log_size():
            self._apply(list(self._read_log(indexed)))
        self._commit_meta()

    def cases(self) -> dict[str, EdgeCase]:
        """The current cases, folded from the log (later operations win)."""
        current: dict[str, EdgeCase] = {}
        for op in self._read_log():
            if op["op"] == "put":
                case = EdgeCase.model_validate(op["case"])
                current[case.id] = case
            else:
                current.pop(op["id"], None)
        return current

    # --- writing ------------------------------------------------------------------------------------------
    def add(self, cases: list[EdgeCase]) -> AddReport:
        """Insert or update by id; identical content is skipped (and not re-logged). A reviewed case is never
        replaced by an unreviewed one: a human's label outranks a file's, and losing the review would silently take
        the case out of retrieval (the caller reports `kept_reviewed`; `remove` first to replace such a case)."""
        self._require_writer()
        report = AddReport()
        unique = list({c.id: c for c in cases}.values())
        for start in range(0, len(unique), BATCH):
            batch = unique[start:start + BATCH]
            legacy = {c.id: old for c in batch if (old := _legacy_seed_id(c)) is not None}
            existing = self.get_many([c.id for c in batch] + list(legacy.values()))
            changed = []
            for case in batch:
                old = legacy.get(case.id)
                if case.id not in existing and old in existing and existing[old].source_ref == case.source_ref:
                    case = case.model_copy(update={"id": old})  # a case seeded before ids were file-scoped
                before = existing.get(case.id)
                if before is None:
                    report.added += 1
                elif before.reviewed and not case.reviewed:
                    report.kept_reviewed.append(case.id)
                    continue
                elif _content(before) == _content(case):
                    report.skipped += 1
                    continue
                else:
                    report.updated += 1
                    case = case.model_copy(update={"created_at": before.created_at})
                changed.append(case)
            if changed:
                # Each case is serialised once: the same JSON is the log line and the index's document.
                documents = [c.model_dump_json() for c in changed]
                self._append([_put_line(doc) for doc in documents])  # the log first: it is the source of truth
                previously = {c.id: existing[c.id].reviewed for c in changed if c.id in existing}
                self._index(changed, documents, previously)
                self._commit_meta()
        return report

    def remove(self, ids: list[str]) -> int:
        self._require_writer()
        present = list(self.get_many(ids))
        if present:
            ops = [{"op": "rm", "id": i} for i in present]
            self._append(ops)
            self._apply(ops)
            self._commit_meta()
        return len(present)

    def _apply(self, ops: list[dict[str, Any]]) -> None:
        """Bring the index in line with a run of log operations (in order; the last op per id wins)."""
        final: dict[str, dict[str, Any] | None] = {}
        for op in ops:
            final[op["case"]["id"] if op["op"] == "put" else op["id"]] = op.get("case")
        removed = [i for i, c in final.items() if c is None]
        for reviewed in (True, False):
            if removed:
                self.index(reviewed).delete(ids=removed)
        puts = [EdgeCase.model_validate(c) for c in final.values() if c is not None]
        self._index(puts, [c.model_dump_json() for c in puts], None)

    def _index(self, cases: list[EdgeCase], documents: list[str], previously: dict[str, bool] | None) -> None:
        """Embed and upsert cases in batches. `previously` is the review status each id had in the index (absent:
        not indexed); None when unknown (a replay), so every case is cleared from the other index first."""
        for start in range(0, len(cases), BATCH):
            chunk, docs = cases[start:start + BATCH], documents[start:start + BATCH]
            vectors = self.embedder.embed([c.text() for c in chunk])
            for reviewed in (True, False):
                rows = [j for j, c in enumerate(chunk) if c.reviewed == reviewed]
                if not rows:
                    continue
                # A case whose review status changed must leave the other index (a new case is in neither).
                moved = [chunk[j].id for j in rows
                         if previously is None or previously.get(chunk[j].id, reviewed) != reviewed]
                if moved:
                    self.index(not reviewed).delete(ids=moved)
                self.index(reviewed).upsert(ids=[chunk[j].id for j in rows], embeddings=vectors[rows],
                                            metadatas=[_index_metadata(chunk[j], docs[j]) for j in rows])

    def rebuild(self, embedding: str | None = None) -> int:
        """Drop the index and recreate it from the log, optionally with another embedding. Returns the count."""
        self._require_writer()
        if embedding is not None and embedding != self.embedding_name:
            self._embedder = make_embedder(embedding)  # a bad name fails before anything is dropped
            self.embedding_name = embedding
        self._drop_index()
        self._collections, self._index_checked = {}, True
        # The index is empty now: a crash midway replays the whole log on the next open.
        self._write_meta(indexed_bytes=0, log_tail_sha256=None, index_counts=None)
        self._repair_torn_tail()
        cases = self.cases()
        self._apply([{"op": "put", "case": c.model_dump(mode="json")} for c in cases.values()])
        self._commit_meta()
        return len(cases)

    def _drop_index(self) -> None:
        try:
            client = self._client()
            present = {c if isinstance(c, str) else c.name for c in client.list_collections()}
            for name in COLLECTIONS.values():
                if name in present:
                    client.delete_collection(name)
        except Exception:  # an index chroma cannot even open: it is derived data, start it afresh
            from chromadb.api.client import SharedSystemClient

            SharedSystemClient.clear_system_cache()
            shutil.rmtree(self.root / "index", ignore_errors=True)

    # --- reading ------------------------------------------------------------------------------------------
    def get_many(self, ids: list[str]) -> dict[str, EdgeCase]:
        ids = list(dict.fromkeys(ids))  # chroma refuses a repeated id
        if not ids:
            return {}
        found: dict[str, EdgeCase] = {}
        for reviewed in (True, False):
            got = self.index(reviewed).get(ids=ids, include=["documents", "metadatas"])
            found.update((i, EdgeCase.model_validate_json(_case_json(doc, meta)))
                         for i, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True))
        return found

    def logged_ids(self) -> set[str]:
        """Every case id the log mentions: cases that were written at some point, even if removed since."""
        if not self.log_path.exists():
            return set()
        return {m.decode() for m in re.findall(rb'"(ec-[0-9a-f]{20})"', self.log_path.read_bytes())}

    def get(self, case_id_: str) -> EdgeCase | None:
        return self.get_many([case_id_]).get(case_id_)

    def find(self, identifier: str) -> list[EdgeCase]:
        """The cases an id a user typed names: a case id (`ec-…`), or else the id of the record a case came from
        (a seed file's id column, a reviewed sample's id) — several cases when several files used that id."""
        if identifier.startswith("ec-") and (case := self.get(identifier)) is not None:
            return [case]
        return [c for c in self.cases().values() if record_id(c) == identifier]

    def count(self, *, reviewed: bool | None = None) -> int:
        if reviewed is None:
            return self.count(reviewed=True) + self.count(reviewed=False)
        return int(self.index(reviewed).count())

    def search(self, text: str, k: int = 5, *, reviewed_only: bool = False) -> list[tuple[EdgeCase, float]]:
        """Nearest cases to `text` with cosine similarity, best first."""
        return self.search_vector(self.embedder.embed([text])[0], k, reviewed_only=reviewed_only)

    def search_vector(self, vector: np.ndarray, k: int, *, reviewed_only: bool = False) -> list[tuple[EdgeCase, float]]:
        include = ["documents", "metadatas", "distances"]
        found: list[tuple[EdgeCase, float]] = []
        for reviewed in (True,) if reviewed_only else (True, False):
            index = self.index(reviewed)
            total = index.count()
            if total == 0:
                continue
            result = index.query(query_embeddings=[vector], n_results=min(k, total), include=include)
            for doc, meta, distance in zip(result["documents"][0], result["metadatas"][0], result["distances"][0],
                                           strict=True):
                found.append((EdgeCase.model_validate_json(_case_json(doc, meta)), 1.0 - float(distance)))
        return sorted(found, key=lambda pair: -pair[1])[:k]

    def similar(self, text: str, k: int = 4, *, per_source: int = 2, duplicate_similarity: float = 0.85,
                vector: np.ndarray | None = None, floor: float = RELEVANCE_FLOOR) -> list[tuple[EdgeCase, float]]:
        """Top-k *reviewed* cases for the judge prompt and the TUI, none below the relevance `floor`: at most one
        per near-duplicate cluster and `per_source` per origin, so five copies of one (possibly poisoned) case
        cannot crowd out the rest.
        0.85: with WordLlama, copies that differ by a number or a suffix score ≥ 0.89, while different
        sentences on one topic score well under 0.5. Only the chosen documents are parsed: this runs once
        per judged sample."""
        query = vector if vector is not None else self.embedder.embed([text])[0]
        try:
            # 2k candidates: enough to skip a few near-duplicates, and the query costs what a plain top-k does
            # (3k measured ~30% slower at 10k-100k cases).
            result = self.index(reviewed=True).query(query_embeddings=[query], n_results=k * 2,
                                                     include=["documents", "distances", "embeddings", "metadatas"])
        except Exception as exc:  # chroma raises on an empty index in some versions
            if self.count(reviewed=True) == 0:
                return []
            raise OverseerError(f"memory query failed: {exc}") from exc
        chosen: list[tuple[EdgeCase, float]] = []
        kept: list[np.ndarray] = []
        per_origin: dict[str, int] = {}
        for doc, distance, embedding, meta in zip(result["documents"][0], result["distances"][0],
                                                  result["embeddings"][0], result["metadatas"][0], strict=True):
            if 1.0 - float(distance) < floor:
                break  # nearest first: every later one is below the floor too
            origin = meta["origin"]
            if per_origin.get(origin, 0) >= per_source:
                continue
            vec = np.asarray(embedding, dtype=np.float32)
            if any(float(vec @ other) >= duplicate_similarity for other in kept):
                continue
            chosen.append((EdgeCase.model_validate_json(_case_json(doc, meta)), 1.0 - float(distance)))
            kept.append(vec)
            per_origin[origin] = per_origin.get(origin, 0) + 1
            if len(chosen) == k:
                break
        return chosen

    def labelled_cases(self, *, reviewed_only: bool = True) -> tuple[list[str], list[str | None], list[str], list[str]]:
        """(ids, prompts, responses, labels) of the cases the fast judge may learn from."""
        ids: list[str] = []
        cases: list[dict[str, Any]] = []
        for reviewed in (True,) if reviewed_only else (True, False):
            got = self.index(reviewed).get(include=["documents", "metadatas"])
            ids += got["ids"]
            cases += [json.loads(_case_json(doc, meta))  # plain json: 100k cases in ~1 s
                      for doc, meta in zip(got["documents"], got["metadatas"], strict=True)]
        return ids, [c.get("prompt") for c in cases], [c["response"] for c in cases], [c["label"] for c in cases]

    @property
    def version(self) -> str:
        """Changes whenever the memory does: the fast judge retrains when it sees a new version."""
        return f"{self.meta.get('indexed_bytes', 0)}:{self.embedding_name}"


def record_id(case: EdgeCase) -> str | None:
    """The id the case's own record had: a seeded record's id column, or the id of the reviewed sample."""
    if case.source == "seed":
        found = case.metadata.get("record_id")
        return None if found is None else str(found)
    if case.source == "review" and case.source_ref:
        return case.source_ref.rpartition("/")[2]  # source_ref is RUN_ID/SAMPLE_ID
    return None


def _put_line(document: str) -> str:
    return f'{{"op": "put", "case": {document}}}\n'


def _content(case: EdgeCase) -> dict[str, Any]:
    return case.model_dump(mode="json", exclude={"created_at"})


def _legacy_seed_id(case: EdgeCase) -> str | None:
    """The id a seeded record had before ids included their file's identity. The same file's record stored under
    it is the same case: re-seeding an older memory updates it instead of adding a duplicate."""
    record_id = case.metadata.get("record_id") if case.source == "seed" else None
    return case_id(None, "", str(record_id)) if record_id is not None else None


def same_content(a: EdgeCase, b: EdgeCase) -> bool:
    """What `add` skips as unchanged: everything but when the case was first added."""
    return _content(a) == _content(b)


def _index_metadata(case: EdgeCase, document: str) -> dict[str, Any]:
    return {"case": document, "origin": case.source_ref or case.source}


def _case_json(document: str | None, metadata: Any) -> str:
    """An entry's case JSON: in its metadata, or (an index written before) its chroma document."""
    found = (metadata or {}).get("case") or document
    if not isinstance(found, str):
        raise OverseerError(f"a memory index entry has no case; rebuild the index with {REBUILD_HINT}")
    return found


