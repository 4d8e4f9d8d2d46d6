-- The tag vocabulary, tags on images (automatic ones kept apart from a person's decisions), and
-- a cache of prompt embeddings so that a vocabulary edit embeds only the prompts that changed.

CREATE TABLE labels (
    id         INTEGER PRIMARY KEY,
    -- May be hierarchical: "Animals/Dog".
    name       TEXT NOT NULL UNIQUE,
    -- JSON array of prompts; empty means the vocabulary's templates filled with the name.
    prompts    TEXT NOT NULL DEFAULT '[]',
    negative   TEXT,
    mode       TEXT NOT NULL DEFAULT 'threshold' CHECK (mode IN ('threshold', 'contrast', 'topk')),
    -- threshold: minimum cosine; contrast: minimum probability of the positive prompt;
    -- topk: minimum probability among the vocabulary.
    threshold  REAL NOT NULL,
    top_k      INTEGER NOT NULL DEFAULT 1,
    enabled    INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE tags (
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    label_id INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    score    REAL,
    -- auto: computed, replaced on every re-tag; accepted / rejected / manual: a person's
    -- decision, which automatic tagging never changes.
    source   TEXT NOT NULL CHECK (source IN ('auto', 'accepted', 'rejected', 'manual')),
    PRIMARY KEY (image_id, label_id)
) WITHOUT ROWID;
CREATE INDEX tags_label ON tags (label_id, source);

CREATE TABLE text_embeddings (
    model  TEXT NOT NULL,
    text   TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, text)
) WITHOUT ROWID;
