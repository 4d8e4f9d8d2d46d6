-- What a label learned is kept per model, as its thresholds are (0007): a switch to another
-- model and back brings the learning back, and a reset or a new fit under one model leaves what
-- the label learned under the others. The label's own learned columns (0006) hold the slot of
-- the model the library scores with now; this table holds every model's, that one included.

CREATE TABLE label_learning (
    label_id            INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    model               TEXT NOT NULL,
    direction           BLOB NOT NULL,
    zero_shot_threshold REAL NOT NULL,
    positives           INTEGER NOT NULL,
    negatives           INTEGER NOT NULL,
    PRIMARY KEY (label_id, model)
) WITHOUT ROWID;

INSERT INTO label_learning (label_id, model, direction, zero_shot_threshold, positives, negatives)
SELECT id, learned_model, learned_direction, COALESCE(zero_shot_threshold, threshold),
       COALESCE(learned_positives, 0), COALESCE(learned_negatives, 0)
FROM labels
WHERE learned_model IS NOT NULL AND learned_direction IS NOT NULL;

-- A slot learned under a model the library no longer scores with is that model's, not the
-- current one's: it stays in the table above and leaves the slot.
UPDATE labels
SET learned_model = NULL, learned_direction = NULL, zero_shot_threshold = NULL,
    learned_positives = NULL, learned_negatives = NULL
WHERE learned_model IS NOT NULL
  AND EXISTS (SELECT 1 FROM settings WHERE key = 'thresholds_model')
  AND learned_model != (SELECT value FROM settings WHERE key = 'thresholds_model');
