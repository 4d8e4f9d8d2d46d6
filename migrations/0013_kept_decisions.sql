-- A person's decisions on the photos of a folder they removed from the library, kept per photo
-- (where it was, and its content's BLAKE3 hash) once its row is gone: when the folder is added
-- again each photo gets its own decisions back as it is indexed, and when a copy of the folder
-- turns up elsewhere each photo found by its content takes those of the removed photo with that
-- content and its name (or of the only one with that content). A decision goes with its label.

CREATE TABLE kept_decisions (
    path       BLOB NOT NULL,
    -- NULL for a photo never read to the end (waiting for a model, or unreadable): its
    -- decisions come back only to the photo at the same path.
    hash       TEXT,
    label_id   INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    source     TEXT NOT NULL CHECK (source IN ('accepted', 'rejected', 'manual')),
    -- The folder removed, to say where they came from.
    folder     BLOB NOT NULL,
    removed_at INTEGER NOT NULL,
    PRIMARY KEY (path, label_id)
) WITHOUT ROWID;

CREATE INDEX kept_decisions_hash ON kept_decisions (hash);
CREATE INDEX kept_decisions_label ON kept_decisions (label_id);
