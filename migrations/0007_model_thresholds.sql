-- Scores differ between models: a CLIP label's threshold is a cosine, a SigLIP label's a
-- probability, and even two CLIP models' cosines do not line up. Each label keeps the threshold
-- it had under every model the library used, so switching models and back restores them; each
-- model keeps the scale (and, for sigmoid-trained models, the bias) that turns its cosines into
-- logits, so re-tagging after a switch needs no model loaded.

CREATE TABLE label_thresholds (
    label_id  INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    model     TEXT NOT NULL,
    threshold REAL NOT NULL,
    PRIMARY KEY (label_id, model)
) WITHOUT ROWID;

CREATE TABLE model_scoring (
    model       TEXT PRIMARY KEY,
    logit_scale REAL NOT NULL,
    -- NULL for softmax-trained models (CLIP).
    logit_bias  REAL
) WITHOUT ROWID;
