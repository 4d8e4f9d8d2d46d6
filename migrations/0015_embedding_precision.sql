-- The arithmetic each embedding was computed in ('f32', 'bf16' or 'f16'): cliptag embeds in the
-- fastest precision the CPU runs unless a person asks for exact f32, so a library can hold both
-- and says which photo has which. NULL for embeddings made before cliptag recorded it.

ALTER TABLE embeddings ADD COLUMN precision TEXT;
