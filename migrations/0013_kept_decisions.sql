-- A person's decisions on the photos of a folder they removed from the library, kept by each
-- photo's content (its BLAKE3 hash) rather than its row: the photos leave the library, and when
-- the folder (or a copy of it, anywhere) is added again, each photo gets its decisions back as
-- it is indexed. A decision goes with its label.

CREATE TABLE kept_decisions (
    hash       TEXT NOT NULL,
    label_id   INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    source     TEXT NOT NULL CHECK (source IN ('accepted', 'rejected', 'manual')),
    -- The folder removed, to say where they came from.
    folder     BLOB NOT NULL,
    removed_at INTEGER NOT NULL,
    PRIMARY KEY (hash, label_id)
) WITHOUT ROWID;

CREATE INDEX kept_decisions_label ON kept_decisions (label_id);
