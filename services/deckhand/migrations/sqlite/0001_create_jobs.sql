-- Jobs submitted through POST /v1/jobs and run by `deckhand worker`.
-- The embedded twin of the PostgreSQL schema: same columns, SQLite types.
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    result      TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    worker_id   TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    duration_ms REAL
);

CREATE INDEX jobs_status_idx ON jobs (status);
