//! Read-only memory maps of model files, so weights are used in place without copying.

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A file mapped read-only into memory. Tensors borrow their bytes from it through an
/// `Arc<MappedFile>`, so the map lives as long as any tensor that reads it.
///
/// ```no_run
/// use ziglama_tensor::MappedFile;
/// let map = MappedFile::open("models/smollm2-135m-instruct-q4_1.gguf")?;
/// assert_eq!(&map[..4], b"GGUF");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct MappedFile {
    map: memmap2::Mmap,
    path: PathBuf,
}

impl MappedFile {
    /// Maps `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> io::Result<MappedFile> {
        let path = path.as_ref();
        let file = File::open(path)?;
        // SAFETY: the map is read-only and private to this process. Another process
        // truncating or rewriting the file while it is mapped would change or invalidate the
        // bytes under us; like every memory-mapping model loader we document that model files
        // must not be modified while in use. All reads of the map are bounds-checked slices.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(MappedFile {
            map,
            path: path.to_path_buf(),
        })
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

impl Deref for MappedFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}
