-- Embeddings move to a rowid table. In a WITHOUT ROWID table a 2 KiB vector (512 floats) spills
-- into an overflow page chain; in a rowid table it stays in its B-tree page, which made loading a
-- 100k-photo library's vectors about twice as fast.

CREATE TABLE embeddings_rowid (
    id       INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    model    TEXT NOT NULL,
    dim      INTEGER NOT NULL,
    vector   BLOB NOT NULL,
    UNIQUE (image_id, model)
);
INSERT INTO embeddings_rowid (image_id, model, dim, vector)
    SELECT image_id, model, dim, vector FROM embeddings ORDER BY image_id, model;
DROP TABLE embeddings;
ALTER TABLE embeddings_rowid RENAME TO embeddings;
