-- Paths become the file system's own bytes (BLOB) instead of text, so that a file whose name is
-- not valid UTF-8 can be indexed; a valid name's bytes are its UTF-8 text, so every stored path
-- keeps its value. The migration runs with foreign keys off: rebuilding `images` must not cascade
-- into `embeddings` and `tags`, which keep pointing at the same ids.

CREATE TABLE images_by_bytes (
    id           INTEGER PRIMARY KEY,
    path         BLOB NOT NULL UNIQUE,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    hash         TEXT,
    width        INTEGER,
    height       INTEGER,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'error', 'missing')),
    error        TEXT,
    first_seen   INTEGER NOT NULL,
    last_indexed INTEGER
);
INSERT INTO images_by_bytes
    SELECT id, CAST(path AS BLOB), size, mtime_ns, hash, width, height, status, error, first_seen,
           last_indexed
    FROM images;
DROP TABLE images;
ALTER TABLE images_by_bytes RENAME TO images;
CREATE INDEX images_hash ON images (hash);
CREATE INDEX images_status ON images (status);

CREATE TABLE roots_by_bytes (
    path     BLOB PRIMARY KEY,
    added_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO roots_by_bytes SELECT CAST(path AS BLOB), added_at FROM roots;
DROP TABLE roots;
ALTER TABLE roots_by_bytes RENAME TO roots;
