-- What a label learned from a person's decisions: the direction its photos are scored against
-- (unit-length little-endian f32s, in the embedding space of `learned_model`), the threshold it
-- had before learning (restored by a reset), and how many accepts and rejects it learned from.
-- A label without them is scored by its prompts, as before.

ALTER TABLE labels ADD COLUMN learned_model TEXT;
ALTER TABLE labels ADD COLUMN learned_direction BLOB;
ALTER TABLE labels ADD COLUMN zero_shot_threshold REAL;
ALTER TABLE labels ADD COLUMN learned_positives INTEGER;
ALTER TABLE labels ADD COLUMN learned_negatives INTEGER;
