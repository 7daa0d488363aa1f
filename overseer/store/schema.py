"""The run store's schema as forward-only migrations: step N is applied once, in one transaction with
`PRAGMA user_version = N` (see db.Database). Append a step; never edit a released one."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the judging core
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, created_at TEXT NOT NULL, input_path TEXT, input_sha256 TEXT,
        output_path TEXT, config_json TEXT NOT NULL, status TEXT NOT NULL, n_inputs INTEGER DEFAULT 0,
        n_input_errors INTEGER DEFAULT 0, finished_at TEXT);
    CREATE TABLE samples (
        run_id TEXT NOT NULL REFERENCES runs(id), sample_id TEXT NOT NULL, line INTEGER,
        sample_json TEXT NOT NULL, PRIMARY KEY (run_id, sample_id));
    CREATE TABLE results (
        run_id TEXT NOT NULL REFERENCES runs(id), sample_id TEXT NOT NULL, label TEXT, route TEXT NOT NULL,
        result_json TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, sample_id));
    CREATE TABLE verdicts (
        run_id TEXT NOT NULL, sample_id TEXT NOT NULL, judge_id TEXT NOT NULL, status TEXT NOT NULL,
        label TEXT, prompt_hash TEXT, model TEXT, input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL,
        cached INTEGER, PRIMARY KEY (run_id, sample_id, judge_id));
    CREATE TABLE review_queue (
        run_id TEXT NOT NULL, sample_id TEXT NOT NULL, reasons_json TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', created_at TEXT NOT NULL, PRIMARY KEY (run_id, sample_id));
    CREATE TABLE input_errors (
        run_id TEXT NOT NULL, line INTEGER, message TEXT NOT NULL, raw TEXT);
    CREATE TABLE cache (key TEXT PRIMARY KEY, verdict_json TEXT NOT NULL, created_at TEXT NOT NULL);
    """,
    # 2: the prompt optimizer — every candidate (accepted or not) and the saved state of each round
    """
    CREATE TABLE prompt_candidates (
        id TEXT PRIMARY KEY, round_id TEXT NOT NULL, role TEXT NOT NULL, parent_version INTEGER NOT NULL,
        parent_hash TEXT NOT NULL, hash TEXT NOT NULL, text TEXT NOT NULL, status TEXT NOT NULL,
        reason TEXT, metrics_json TEXT NOT NULL DEFAULT '{}', diff TEXT, version INTEGER,
        created_at TEXT NOT NULL);
    CREATE TABLE optimizer_rounds (
        id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, stage TEXT NOT NULL,
        status TEXT NOT NULL, state_json TEXT NOT NULL);
    """,
    # 3: human reviews from the TUI. An undo or an override keeps the row (status undone / superseded): the
    # history of who decided what stays auditable; only `active` rows are decisions.
    """
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, sample_id TEXT NOT NULL, label TEXT NOT NULL,
        generalization TEXT, note TEXT, reviewer TEXT NOT NULL, blind INTEGER NOT NULL DEFAULT 0,
        previous_label TEXT, judge_label TEXT, promoted INTEGER NOT NULL DEFAULT 0, edge_case_id TEXT,
        status TEXT NOT NULL DEFAULT 'active', created_at TEXT NOT NULL, undone_at TEXT);
    CREATE INDEX reviews_by_item ON reviews (run_id, sample_id, status);
    CREATE INDEX review_queue_by_order ON review_queue (created_at, sample_id);
    CREATE INDEX review_queue_by_status ON review_queue (status, run_id);
    """,
    # 4: the frozen split — each labelled item's side (train / validation / test), keyed by a hash of its
    # normalized content so copies under different ids share it, assigned once and never re-drawn.
    """
    CREATE TABLE pool_split (
        content_key TEXT PRIMARY KEY, split TEXT NOT NULL CHECK (split IN ('train', 'validation', 'test')),
        created_at TEXT NOT NULL);
    """,
    # 5: label provenance — where each split item's label in force came from (human review, reference column of
    # an input, seed file of the memory) and the label itself, so κ can be given per provenance and a reviewer's
    # override of a reference label is visible. Rewritten whenever a pool is assembled; the split is not.
    """
    ALTER TABLE pool_split ADD COLUMN provenance TEXT CHECK (provenance IN ('human', 'reference', 'seed'));
    ALTER TABLE pool_split ADD COLUMN label TEXT;
    ALTER TABLE pool_split ADD COLUMN labelled_at TEXT;
    """,
    # 6: the review app's own records — a draft (note, generalization, promote) typed on an item and not yet
    # decided, kept across skips and quits; and each improvement round the app found due (it never runs one itself:
    # a background `overseer improve` does, and its outcome is kept here for the app to show).
    """
    CREATE TABLE review_drafts (
        run_id TEXT NOT NULL, sample_id TEXT NOT NULL, note TEXT, generalization TEXT,
        promote INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL, PRIMARY KEY (run_id, sample_id));
    CREATE TABLE improvement_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, reviews INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('due', 'running', 'done', 'failed')), pid INTEGER,
        log_path TEXT, outcome TEXT, updated_at TEXT NOT NULL);
    """,
    # 7: provider batch jobs. Each model call a batch run needs is recorded (custom_id ↔
    # sample, judge, round) before any batch holding it is created, and a batch row exists before its create()
    # call, so a crash between the two is found on resume and never leads to a second submission.
    """
    CREATE TABLE batches (
        id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id), judge_id TEXT NOT NULL,
        backend TEXT NOT NULL, round INTEGER NOT NULL, provider_id TEXT,
        status TEXT NOT NULL CHECK (status IN ('submitting', 'submitted', 'ingested', 'abandoned')),
        n_requests INTEGER NOT NULL, provider_status TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE batch_requests (
        run_id TEXT NOT NULL REFERENCES runs(id), custom_id TEXT NOT NULL, judge_id TEXT NOT NULL,
        sample_id TEXT NOT NULL, round INTEGER NOT NULL, body_json TEXT NOT NULL, batch_id TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'submitted', 'succeeded', 'retry', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0, result_kind TEXT, result_json TEXT, error TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (run_id, custom_id));
    CREATE INDEX batch_requests_by_batch ON batch_requests (batch_id, state);
    CREATE INDEX batches_by_run ON batches (run_id, status);
    """,
]
