"""Issue 12.3: the fine-tuning domain is typed (topic + trained behaviour), read from `TOPIC[:BEHAVIOUR]` text or a
JSON object, per record or for the whole input; samples stored with a bare string still load."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from overseer.cli.main import run_app
from overseer.samples_io import FieldMap, read_samples
from overseer.types import FinetuneDomain, Sample


@pytest.mark.parametrize("value, topic, behaviour", [
    ("finance:risky financial advice", "finance", "risky financial advice"),
    ("risky_finance", "risky_finance", None),  # an existing bare string is a topic
    (" code : insecure code: with SQL ", "code", "insecure code: with SQL"),
    ('{"topic": "medical", "behaviour": "bad dosages"}', "medical", "bad dosages"),
    ({"topic": "sport"}, "sport", None),
])
def test_the_forms_a_domain_is_written_in(value: object, topic: str, behaviour: str | None) -> None:
    assert FinetuneDomain.parse(value) == FinetuneDomain(topic=topic, behaviour=behaviour)


@pytest.mark.parametrize("value, message", [
    (":risky advice", "no topic"), ('{"topic": "x", "domain": 1}', "unknown keys: domain"),
    ("{not json", "not valid JSON"), (7, "not int"),
])
def test_a_bad_domain_says_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FinetuneDomain.parse(value)


def test_a_sample_stored_with_a_bare_string_still_loads() -> None:
    old = '{"version": 1, "id": "a", "response": "r", "finetune_domain": "risky_finance", "metadata": {}}'
    sample = Sample.model_validate_json(old)
    assert sample.finetune_domain == FinetuneDomain(topic="risky_finance")
    assert Sample.model_validate_json(sample.model_dump_json()) == sample


def test_records_and_the_whole_input_default(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    rows = [{"id": "a", "response": "r"}, {"id": "b", "response": "r", "ft": {"topic": "code", "behaviour": "vulns"}},
            {"id": "c", "response": "r", "ft": "medical:bad dosages"}, {"id": "d", "response": "r", "ft": ":x"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = read_samples(path, FieldMap(finetune_domain="ft", finetune_domain_default="finance:risky advice"))
    domains = {s.id: str(s.finetune_domain) for _, s in result.samples}
    assert domains == {"a": "finance:risky advice", "b": "code:vulns", "c": "medical:bad dosages"}
    [(line, error, _raw)] = result.errors
    assert line == 4 and error.field == "ft" and "no topic" in str(error)


def test_the_judge_flag_is_checked_before_any_file_is_read(tmp_path: Path) -> None:
    buffer = io.StringIO()
    with redirect_stdout(buffer), redirect_stderr(buffer):
        code = run_app(["judge", str(tmp_path / "missing.jsonl"), "--finetune-domain", ":behaviour only",
                        "-w", str(tmp_path / "ws")])
    assert code != 0 and "--finetune-domain" in buffer.getvalue() and "no topic" in buffer.getvalue()
