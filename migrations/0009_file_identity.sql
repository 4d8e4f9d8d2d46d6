-- The file system's identity of each photo's file (its inode on Unix). Size and modification
-- time alone cannot tell that two files of equal size and time swapped names (a renamer that
-- keeps times does exactly that); the inode at a path changes when they do. NULL until a run has
-- seen the file (and where the system has no such number).

ALTER TABLE images ADD COLUMN inode INTEGER;
