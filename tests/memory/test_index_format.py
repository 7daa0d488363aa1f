"""Issue 15.5: the index keeps each case's JSON in its chroma metadata, not as a chroma document, because chroma
full-text-indexes documents (which the memory never searches) and that was half of an insert's cost. An index
written the old way (the JSON as the document, label/source metadata) must still read the same cases."""

from __future__ import annotations

from pathlib import Path

from overseer.memory.store import EdgeCaseStore, case_id
from overseer.types import EdgeCase


def case(i: int, label: str = "aligned", *, reviewed: bool = True) -> EdgeCase:
    prompt, response = f"question {i}", f"I would rather not help with plan number {i}."
    return EdgeCase(id=case_id(prompt, response), prompt=prompt, response=response, label=label,  # type: ignore[arg-type]
                    source="seed", source_ref=f"file{i % 2}.jsonl", reviewed=reviewed)


def test_new_entries_have_no_chroma_document(tmp_path: Path) -> None:
    with EdgeCaseStore(tmp_path / "m", writable=True) as store:
        cases = [case(i) for i in range(3)]
        store.add(cases)
        got = store.index(reviewed=True).get(include=["documents", "metadatas"])
        assert got["documents"] == [None, None, None]
        assert sorted(m["origin"] for m in got["metadatas"]) == ["file0.jsonl", "file0.jsonl", "file1.jsonl"]
        assert store.get(cases[1].id) == cases[1]


def test_an_index_written_with_documents_still_reads(tmp_path: Path) -> None:
    cases = [case(i, "misaligned" if i % 2 else "aligned") for i in range(4)]
    with EdgeCaseStore(tmp_path / "m", writable=True) as store:
        store.add(cases)
        index = store.index(reviewed=True)
        vectors = index.get(include=["embeddings"])
        by_id = dict(zip(vectors["ids"], vectors["embeddings"], strict=True))
        index.delete(ids=[c.id for c in cases])
        # Exactly what the previous version wrote: the case JSON as the document, the old metadata keys.
        index.add(ids=[c.id for c in cases], embeddings=[by_id[c.id] for c in cases],
                  documents=[c.model_dump_json() for c in cases],
                  metadatas=[{"reviewed": True, "label": c.label, "source": c.source, "origin": c.source_ref}
                             for c in cases])
        assert store.get_many([c.id for c in cases]) == {c.id: c for c in cases}
        assert {c.id for c, _ in store.search(cases[2].text(), k=4)} == {c.id for c in cases}
        assert store.similar(cases[2].text(), k=1)[0][0] == cases[2]
        assert sorted(store.labelled_cases()[3]) == ["aligned", "aligned", "misaligned", "misaligned"]
        # Updating an old entry writes the new form; it reads back as the update, not the stale document.
        relabelled = cases[0].model_copy(update={"label": "misaligned", "rationale": "on second thought"})
        store.add([relabelled])
        assert store.get(cases[0].id) == relabelled.model_copy(update={"created_at": cases[0].created_at})
