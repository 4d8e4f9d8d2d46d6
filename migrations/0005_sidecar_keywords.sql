-- The keywords cliptag added to each XMP sidecar, so that a later export takes out exactly those
-- that no longer apply and never one that the person or another tool wrote, even with the same
-- text. Earlier versions kept this list inside the sidecar (`cliptag:subject`); it moves here so
-- that sidecars carry nothing but the photo's metadata.

CREATE TABLE sidecar_keywords (
    -- The sidecar file's path (bytes, as `images.path`).
    sidecar BLOB NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('subject', 'hierarchical')),
    keyword TEXT NOT NULL,
    PRIMARY KEY (sidecar, kind, keyword)
) WITHOUT ROWID;
