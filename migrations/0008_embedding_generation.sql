-- A count of changes to what the library's embedding matrix holds: any embedding written,
-- replaced or deleted, and any photo whose status changes (only indexed photos' embeddings are
-- scored) or that is forgotten. The flat file of vectors beside the database records the count
-- it was written at; a file whose count differs from this one is stale and is rebuilt from here.

CREATE TABLE embedding_generation (n INTEGER NOT NULL);
INSERT INTO embedding_generation (n) VALUES (0);

CREATE TRIGGER embedding_inserted AFTER INSERT ON embeddings
BEGIN
    UPDATE embedding_generation SET n = n + 1;
END;

CREATE TRIGGER embedding_updated AFTER UPDATE ON embeddings
BEGIN
    UPDATE embedding_generation SET n = n + 1;
END;

CREATE TRIGGER embedding_deleted AFTER DELETE ON embeddings
BEGIN
    UPDATE embedding_generation SET n = n + 1;
END;

CREATE TRIGGER image_status_changed AFTER UPDATE OF status ON images
WHEN OLD.status IS NOT NEW.status
BEGIN
    UPDATE embedding_generation SET n = n + 1;
END;

CREATE TRIGGER image_deleted AFTER DELETE ON images
BEGIN
    UPDATE embedding_generation SET n = n + 1;
END;
