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
