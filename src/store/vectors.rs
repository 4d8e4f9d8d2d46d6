//! The library's embeddings as one flat file beside the database (`library.sqlite.embeddings`): the
//! exact rows of the embedding matrix in its row order, read at disk speed when the library
//! opens instead of row by row from SQLite, and read back a block or a row at a time while
//! scoring, so they need not stay in memory.
//!
//! The database stays the truth. The file records the model and the database's embedding
//! generation it was written at; a file that is missing, of another model or generation, cut
//! short, or whose checksums fail is rebuilt from the database. While rows change the header
//! says so (generation −1), so a crash midway leaves a file that is rebuilt, never one that is
//! trusted.
//!
//! Layout, little-endian: a 4096-byte header (magic, version, width, rows, generation, model id,
//! then a BLAKE3 checksum of those), then one row per photo: its id (i64), a CRC-32 of the id
//! and vector bytes (u32), and its vector (`width` f32).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::tagging::matrix::RowFile;

const MAGIC: &[u8; 16] = b"cliptag vectors\0";
const VERSION: u32 = 1;
const HEADER: u64 = 4096;
/// The generation a header carries while rows are being changed.
const CHANGING: i64 = -1;
/// Rows read at a time when the whole file is scanned.
const SCAN_ROWS: usize = 8192;

/// Where the embeddings file of the library at `db` lives: the database's whole file name and
/// `.embeddings`, so that two libraries whose names differ only in their extension (`a.sqlite`,
/// `a.db`) never share one, and a database named `x.embeddings` is not its own embeddings file.
pub fn vectors_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".embeddings");
    PathBuf::from(name)
}

/// Whether the file at `path` is missing, empty or an embeddings file cliptag wrote: anything
/// else (another program's file that happens to have the name) is never replaced.
fn replaceable(path: &Path) -> bool {
    use std::io::Read;
    let Ok(mut file) = File::open(path) else {
        return !path.exists();
    };
    let mut head = [0u8; 16];
    match file.read(&mut head) {
        Ok(0) => true,
        Ok(16) => &head == MAGIC,
        _ => false,
    }
}

/// The open embeddings file.
#[derive(Debug)]
pub struct VectorFile {
    file: File,
    path: PathBuf,
    model: String,
    dim: usize,
    rows: usize,
    /// The generation the header says; [`CHANGING`] while rows change.
    generation: i64,
    /// The file a newly created one replaces at its first commit.
    replaces: Option<PathBuf>,
}

impl VectorFile {
    /// Starts the file at `path` anew, empty, for `model`'s vectors of width `dim`. It is
    /// written beside `path` and takes its place at the first [`RowFile::commit`], so another
    /// cliptag reading the old file keeps reading whole rows of it meanwhile.
    pub fn create(path: &Path, model: &str, dim: usize) -> Result<Self> {
        if !replaceable(path) {
            return Err(Error::invalid(format!(
                "{} is not cliptag's embeddings file: it was left alone (the embeddings stay in \
                 memory)",
                path.display()
            )));
        }
        remove_abandoned(path);
        let mut name = path.as_os_str().to_os_string();
        name.push(format!(".new-{}", std::process::id()));
        let fresh = PathBuf::from(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&fresh)
            .map_err(|e| Error::io(&fresh, e))?;
        let mut vectors = VectorFile {
            file,
            path: fresh,
            model: model.to_string(),
            dim,
            rows: 0,
            generation: CHANGING,
            replaces: Some(path.to_path_buf()),
        };
        vectors.write_header()?;
        Ok(vectors)
    }

    /// Opens the file at `path` if it holds `model`'s vectors as of the database's
    /// `generation`, whole; `None` when it is missing or stale (it is to be rebuilt). The rows'
    /// checksums are checked as they are read ([`RowFile::scan`]).
    pub fn open_current(path: &Path, model: &str, generation: i64) -> Result<Option<Self>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut header = vec![0u8; HEADER as usize];
        if read_at(&file, &mut header, 0).is_err() {
            return Ok(None);
        }
        let Some(parsed) = parse_header(&header) else {
            return Ok(None);
        };
        let length = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let whole = (parsed.rows as u64)
            .checked_mul(row_bytes(parsed.dim) as u64)
            .and_then(|rows| rows.checked_add(HEADER));
        if parsed.model != model || parsed.generation != generation || whole != Some(length) {
            return Ok(None);
        }
        Ok(Some(VectorFile {
            file,
            path: path.to_path_buf(),
            model: parsed.model,
            dim: parsed.dim,
            rows: parsed.rows,
            generation,
            replaces: None,
        }))
    }

    /// Rows in the file.
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn header_bytes(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(HEADER as usize);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&(self.dim as u32).to_le_bytes());
        h.extend_from_slice(&(self.rows as u64).to_le_bytes());
        h.extend_from_slice(&self.generation.to_le_bytes());
        let model = &self.model.as_bytes()[..self.model.len().min(2048)];
        h.extend_from_slice(&(model.len() as u32).to_le_bytes());
        h.extend_from_slice(model);
        let sum = blake3::hash(&h);
        h.extend_from_slice(sum.as_bytes());
        h.resize(HEADER as usize, 0);
        h
    }

    fn write_header(&mut self) -> Result<()> {
        let header = self.header_bytes();
        write_at(&self.file, &header, 0).map_err(|e| Error::io(&self.path, e))
    }

    /// Marks the file as changing before its first row changes.
    fn changing(&mut self) -> Result<()> {
        if self.generation != CHANGING {
            self.generation = CHANGING;
            self.write_header()?;
        }
        Ok(())
    }

    fn offset(&self, row: usize) -> u64 {
        HEADER + row as u64 * row_bytes(self.dim) as u64
    }

    fn encode(&self, id: i64, vector: &[f32]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(row_bytes(self.dim));
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        for x in vector {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let sum = row_checksum(&bytes);
        bytes[8..12].copy_from_slice(&sum.to_le_bytes());
        bytes
    }

    fn damaged(&self, row: usize) -> Error {
        Error::invalid(format!(
            "{}: row {row} of the embeddings file is damaged (its checksum fails); it is \
             rebuilt from the library database when the library is next opened",
            self.path.display()
        ))
    }

    /// Decodes `count` rows from `bytes`, checking each, into `ids` (if given) and `out`.
    fn decode(
        &self,
        first: usize,
        bytes: &[u8],
        mut ids: Option<&mut Vec<i64>>,
        out: &mut [f32],
    ) -> Result<()> {
        let width = row_bytes(self.dim);
        for (k, (row, values)) in bytes
            .chunks_exact(width)
            .zip(out.chunks_exact_mut(self.dim))
            .enumerate()
        {
            let stored = u32::from_le_bytes([row[8], row[9], row[10], row[11]]);
            if row_checksum(row) != stored {
                return Err(self.damaged(first + k));
            }
            if let Some(ids) = ids.as_deref_mut() {
                ids.push(i64::from_le_bytes(row[..8].try_into().expect("8 bytes")));
            }
            for (x, b) in values.iter_mut().zip(row[12..].chunks_exact(4)) {
                *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Ok(())
    }
}

impl Drop for VectorFile {
    /// A new file never committed (its rebuild failed) is not left behind.
    fn drop(&mut self) {
        if self.replaces.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl RowFile for VectorFile {
    fn read(&self, first: usize, ids: &[i64], out: &mut [f32]) -> Result<()> {
        let count = out.len() / self.dim.max(1);
        if first + count > self.rows {
            return Err(Error::invalid(format!(
                "{}: rows {first}..{} asked of {}",
                self.path.display(),
                first + count,
                self.rows
            )));
        }
        let mut bytes = vec![0u8; count * row_bytes(self.dim)];
        read_at(&self.file, &mut bytes, self.offset(first))
            .map_err(|e| Error::io(&self.path, e))?;
        let mut found = Vec::with_capacity(count);
        self.decode(first, &bytes, Some(&mut found), out)?;
        if found != ids {
            return Err(Error::invalid(format!(
                "{}: the embeddings file changed while it was being read (another cliptag \
                 indexing the same library?); try again",
                self.path.display()
            )));
        }
        Ok(())
    }

    fn scan(&self, each: &mut dyn FnMut(i64, &[f32]) -> Result<()>) -> Result<()> {
        let mut bytes = Vec::new();
        let mut values = Vec::new();
        let mut ids = Vec::new();
        for first in (0..self.rows).step_by(SCAN_ROWS) {
            let count = SCAN_ROWS.min(self.rows - first);
            bytes.resize(count * row_bytes(self.dim), 0);
            values.resize(count * self.dim, 0.0);
            ids.clear();
            read_at(&self.file, &mut bytes, self.offset(first))
                .map_err(|e| Error::io(&self.path, e))?;
            self.decode(first, &bytes, Some(&mut ids), &mut values)?;
            for (id, vector) in ids.iter().zip(values.chunks_exact(self.dim)) {
                each(*id, vector)?;
            }
        }
        Ok(())
    }

    fn push(&mut self, id: i64, vector: &[f32]) -> Result<()> {
        self.changing()?;
        let bytes = self.encode(id, vector);
        write_at(&self.file, &bytes, self.offset(self.rows))
            .map_err(|e| Error::io(&self.path, e))?;
        self.rows += 1;
        Ok(())
    }

    fn set(&mut self, row: usize, id: i64, vector: &[f32]) -> Result<()> {
        self.changing()?;
        let bytes = self.encode(id, vector);
        write_at(&self.file, &bytes, self.offset(row)).map_err(|e| Error::io(&self.path, e))
    }

    fn swap_remove(&mut self, row: usize) -> Result<()> {
        if row >= self.rows {
            return Err(Error::invalid(format!(
                "{}: row {row} removed of {}",
                self.path.display(),
                self.rows
            )));
        }
        self.changing()?;
        let last = self.rows - 1;
        if row != last {
            let mut bytes = vec![0u8; row_bytes(self.dim)];
            read_at(&self.file, &mut bytes, self.offset(last))
                .map_err(|e| Error::io(&self.path, e))?;
            write_at(&self.file, &bytes, self.offset(row)).map_err(|e| Error::io(&self.path, e))?;
        }
        self.rows = last;
        self.file
            .set_len(self.offset(last))
            .map_err(|e| Error::io(&self.path, e))
    }

    fn commit(&mut self, generation: i64) -> Result<()> {
        if self.generation == generation {
            return Ok(());
        }
        // The rows reach the disk before the header that vouches for them.
        self.file
            .sync_data()
            .map_err(|e| Error::io(&self.path, e))?;
        self.generation = generation;
        self.write_header()?;
        if let Some(path) = self.replaces.take() {
            std::fs::rename(&self.path, &path).map_err(|e| Error::io(&path, e))?;
            self.path = path;
        }
        Ok(())
    }
}

/// Removes the files that cliptag processes no longer running left half written beside `path`
/// (`….new-PID`, from a rebuild that crashed or was killed).
fn remove_abandoned(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let mut prefix = name.to_os_string();
    prefix.push(".new-");
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !running(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` is running (unknown elsewhere than on Unix: assumed so).
fn running(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Bytes of one row of `dim` values.
fn row_bytes(dim: usize) -> usize {
    12 + 4 * dim
}

/// The CRC-32 of a row's id and vector (its checksum field left out).
fn row_checksum(row: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&row[..8]);
    hasher.update(&row[12..]);
    hasher.finalize()
}

struct Header {
    dim: usize,
    rows: usize,
    generation: i64,
    model: String,
}

fn parse_header(h: &[u8]) -> Option<Header> {
    if h.get(..16)? != MAGIC {
        return None;
    }
    let u32_at = |at: usize| Some(u32::from_le_bytes(h.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(h.get(at..at + 8)?.try_into().ok()?));
    if u32_at(16)? != VERSION {
        return None;
    }
    let dim = u32_at(20)? as usize;
    let rows = u64_at(24)? as usize;
    let generation = u64_at(32)? as i64;
    let model_len = u32_at(40)? as usize;
    let end = 44usize.checked_add(model_len)?;
    let model = String::from_utf8(h.get(44..end)?.to_vec()).ok()?;
    let sum = h.get(end..end + 32)?;
    if blake3::hash(&h[..end]).as_bytes() != sum || dim == 0 {
        return None;
    }
    Some(Header {
        dim,
        rows,
        generation,
        model,
    })
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(unix)]
fn write_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                let rest = buf;
                buf = &mut rest[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
fn write_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_write(buf, offset)?;
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("cliptag-vectors-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn rows(file: &VectorFile) -> Vec<(i64, Vec<f32>)> {
        let mut out = Vec::new();
        file.scan(&mut |id, v| {
            out.push((id, v.to_vec()));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn rows_survive_reopening_at_the_same_generation_only() {
        let dir = dir("reopen");
        let path = dir.join("library.embeddings");
        let mut file = VectorFile::create(&path, "model-a", 3).unwrap();
        file.push(5, &[1.0, 2.0, 3.0]).unwrap();
        file.push(6, &[4.0, 5.0, 6.0]).unwrap();
        file.push(7, &[7.0, 8.0, 9.0]).unwrap();
        file.set(1, 6, &[0.5, 0.5, 0.5]).unwrap();
        file.swap_remove(0).unwrap();
        // Changed but not committed: not in place yet, and not trusted.
        assert!(!path.exists());
        assert!(
            VectorFile::open_current(&path, "model-a", 12)
                .unwrap()
                .is_none()
        );
        file.commit(12).unwrap();
        assert!(path.exists());
        // What a killed rebuild leaves is removed by the next one (no process has pid 2³¹−2).
        let abandoned = dir.join("library.embeddings.new-2147483646");
        std::fs::write(&abandoned, b"half").unwrap();
        drop(VectorFile::create(&dir.join("library.embeddings"), "model-a", 3).unwrap());
        assert!(!abandoned.exists());
        // Nor does a rebuild that never committed leave its own file.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        drop(file);
        let file = VectorFile::open_current(&path, "model-a", 12)
            .unwrap()
            .unwrap();
        assert_eq!(
            rows(&file),
            vec![(7, vec![7.0, 8.0, 9.0]), (6, vec![0.5, 0.5, 0.5])]
        );
        let mut one = [0.0f32; 3];
        file.read(1, &[6], &mut one).unwrap();
        assert_eq!(one, [0.5, 0.5, 0.5]);
        assert!(file.read(1, &[7], &mut one).is_err(), "another photo's row");
        assert!(file.read(2, &[6], &mut one).is_err(), "past the last row");
        assert!(
            VectorFile::open_current(&path, "model-a", 13)
                .unwrap()
                .is_none()
        );
        assert!(
            VectorFile::open_current(&path, "model-b", 12)
                .unwrap()
                .is_none()
        );
        assert!(
            VectorFile::open_current(&dir.join("none"), "model-a", 12)
                .unwrap()
                .is_none()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_or_cut_file_is_never_trusted() {
        let dir = dir("damaged");
        let path = dir.join("library.embeddings");
        let mut file = VectorFile::create(&path, "m", 2).unwrap();
        for id in 0..10 {
            file.push(id, &[id as f32, 1.0]).unwrap();
        }
        file.commit(3).unwrap();
        drop(file);
        let mut bytes = std::fs::read(&path).unwrap();
        // One bit of one vector flipped: that row's checksum fails.
        let at = HEADER as usize + 5 * row_bytes(2) + 14;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let file = VectorFile::open_current(&path, "m", 3).unwrap().unwrap();
        let error = file.scan(&mut |_, _| Ok(())).unwrap_err().to_string();
        assert!(
            error.contains("row 5") && error.contains("damaged"),
            "{error}"
        );
        let mut out = [0.0f32; 2];
        assert!(file.read(5, &[5], &mut out).is_err());
        file.read(4, &[4], &mut out).unwrap();
        // A file cut short, or with a damaged header, is stale.
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(VectorFile::open_current(&path, "m", 3).unwrap().is_none());
        bytes[HEADER as usize - 4096 + 30] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(VectorFile::open_current(&path, "m", 3).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
