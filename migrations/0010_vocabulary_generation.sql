-- A count of changes to what automatic tags are computed from: any label added, changed or
-- removed, and the prompt templates or the model's logit scale and bias. `tagged` is the count
-- every automatic tag agrees with: a full re-tag sets it to the count it was computed from, a
-- label's own re-tag right after its edit carries it along, and tags written from an older
-- vocabulary (another program edited it meanwhile) leave it behind. Where the two differ, the
-- next index re-tags the library (an edit killed before its re-tag, two programs at once).
-- `writes` counts writes of automatic tags: a full re-tag vouches for the whole library only if
-- no other write of tags came between its reading the library and its own write.

CREATE TABLE vocabulary_generation (
    n      INTEGER NOT NULL,
    tagged INTEGER NOT NULL,
    writes INTEGER NOT NULL
);
INSERT INTO vocabulary_generation (n, tagged, writes) VALUES (0, 0, 0);

CREATE TRIGGER label_inserted AFTER INSERT ON labels
BEGIN
    UPDATE vocabulary_generation SET n = n + 1;
END;

CREATE TRIGGER label_updated AFTER UPDATE ON labels
BEGIN
    UPDATE vocabulary_generation SET n = n + 1;
END;

CREATE TRIGGER label_deleted AFTER DELETE ON labels
BEGIN
    UPDATE vocabulary_generation SET n = n + 1;
END;

CREATE TRIGGER scoring_setting_added AFTER INSERT ON settings
WHEN NEW.key IN ('templates', 'logit_scale', 'logit_bias')
BEGIN
    UPDATE vocabulary_generation SET n = n + 1;
END;

CREATE TRIGGER scoring_setting_changed AFTER UPDATE ON settings
WHEN NEW.key IN ('templates', 'logit_scale', 'logit_bias') AND NEW.value IS NOT OLD.value
BEGIN
    UPDATE vocabulary_generation SET n = n + 1;
END;
