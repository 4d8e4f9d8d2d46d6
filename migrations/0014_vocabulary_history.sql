-- Vocabulary edits join the history of decisions (migration 0012), so that one Ctrl+Z (or
-- `cliptag undo`) goes back through both in the order they were made: a label added, renamed,
-- moved to another group, enabled or disabled, given another threshold, prompts or mode, or
-- re-fitted from the person's decisions. A step holds either decisions or label changes.
--
-- A label is kept as its vocabulary-file form (JSON) before and after the step, NULL where it
-- did not exist. No foreign key on the label: undoing an addition removes the label, and redoing
-- it stores the label again under the same id.

CREATE TABLE history_labels (
    step_id  INTEGER NOT NULL REFERENCES history_steps (id) ON DELETE CASCADE,
    label_id INTEGER NOT NULL,
    before   TEXT,
    after    TEXT
);

CREATE INDEX history_labels_step ON history_labels (step_id);

-- Undoing the addition of a label removes the label, and with it (by their foreign key) the
-- rows of later steps about it, which were undone before it. Those rows wait here while the
-- label is away and go back to their steps when its addition is redone; a step dropped from the
-- history takes them along.
CREATE TABLE history_parked (
    step_id  INTEGER NOT NULL REFERENCES history_steps (id) ON DELETE CASCADE,
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    label_id INTEGER NOT NULL,
    before   TEXT,
    after    TEXT
);

CREATE INDEX history_parked_label ON history_parked (label_id);

-- A step that undo cannot take back (a library folder removed): undo stops at it once and says
-- how to bring the folder back instead of silently going on to an older step.
CREATE TABLE history_notes (
    step_id INTEGER PRIMARY KEY REFERENCES history_steps (id) ON DELETE CASCADE,
    folder  BLOB NOT NULL
);
