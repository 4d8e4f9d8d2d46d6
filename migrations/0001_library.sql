-- The photo library: which files cliptag knows, their fingerprints and state, and the image
-- embeddings computed from them. Timestamps are milliseconds since the Unix epoch.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Folders the person asked to index.
CREATE TABLE roots (
    path     TEXT PRIMARY KEY,
    added_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE images (
    id           INTEGER PRIMARY KEY,
    path         TEXT NOT NULL UNIQUE,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    -- BLAKE3 of the file's bytes, hex; recognises moved and renamed files.
    hash         TEXT,
    width        INTEGER,
    height       INTEGER,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'error', 'missing')),
    error        TEXT,
    first_seen   INTEGER NOT NULL,
    last_indexed INTEGER
);
CREATE INDEX images_hash ON images (hash);
CREATE INDEX images_status ON images (status);

-- One L2-normalised vector per image and model, little-endian f32.
CREATE TABLE embeddings (
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    model    TEXT NOT NULL,
    dim      INTEGER NOT NULL,
    vector   BLOB NOT NULL,
    PRIMARY KEY (image_id, model)
) WITHOUT ROWID;
