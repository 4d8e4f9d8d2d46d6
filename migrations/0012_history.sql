-- One history of what a person did to the library, for undo and redo (the app's Ctrl+Z and
-- Ctrl+Shift+Z, `cliptag undo` and `cliptag redo`). A step is one action (a key pressed in
-- review, one decision on several picked photos); undoing it puts back what each pair was
-- before, redoing it what the action made. The history is linear: a new step drops the steps
-- that were undone. Rows go with their photo or label, so a step can outlive every row it had;
-- such a step is skipped and removed.

CREATE TABLE history_steps (
    id     INTEGER PRIMARY KEY,
    undone INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE history_decisions (
    step_id  INTEGER NOT NULL REFERENCES history_steps (id) ON DELETE CASCADE,
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    label_id INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    -- The person's decision on the pair before and after the step ('accepted', 'rejected',
    -- 'manual'); NULL where automatic tagging decided it.
    before   TEXT,
    after    TEXT
);

CREATE INDEX history_decisions_step ON history_decisions (step_id);
CREATE INDEX history_decisions_image ON history_decisions (image_id);
CREATE INDEX history_decisions_label ON history_decisions (label_id);
