//! `KnownModel::ensure` on a machine without the model: it runs the fetch script with the
//! models directory, and turns each way of failing into an error that says how to fetch by
//! hand. Uses stand-in scripts, so no network is needed.
//!
//! One test function only: it sets environment variables, which the other tests of this
//! binary would otherwise race with.

use std::fs;
use std::path::PathBuf;

use ziglama::model::catalog::{fetch_script, models_dir, FetchError, KnownModel};

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ziglama-catalog-test-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn ensure_runs_the_script_and_reports_failures() {
    let dir = scratch_dir();
    let models = dir.join("models");
    std::env::set_var("ZIGLAMA_MODELS", &models);
    assert_eq!(models_dir(), models);
    assert_eq!(
        KnownModel::SmolLM2.path(),
        models.join(KnownModel::SmolLM2.file_name())
    );

    // No script where it is looked for.
    std::env::set_var("ZIGLAMA_FETCH_SCRIPT", dir.join("missing.py"));
    assert_eq!(fetch_script(), dir.join("missing.py"));
    let err = KnownModel::SmolLM2.ensure().unwrap_err();
    assert!(matches!(err, FetchError::NoScript { .. }), "{err:?}");
    assert!(
        err.to_string().contains("scripts/fetch_models.py smollm2"),
        "{err}"
    );

    // A script that fails: its standard error is in the message.
    let failing = dir.join("failing.py");
    fs::write(
        &failing,
        "import sys\nprint('no route to PyPI', file=sys.stderr)\nsys.exit(3)\n",
    )
    .unwrap();
    std::env::set_var("ZIGLAMA_FETCH_SCRIPT", &failing);
    let err = KnownModel::Gemma3.ensure().unwrap_err();
    assert!(matches!(err, FetchError::ScriptFailed { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("no route to PyPI") && msg.contains("gemma3"),
        "{msg}"
    );

    // A script that installs the file: it is given the model key and the models directory;
    // here it writes a file of the wrong size, which ensure() then refuses.
    let installing = dir.join("installing.py");
    fs::write(
        &installing,
        "import os, sys\n\
         assert sys.argv[1] == 'smollm2', sys.argv\n\
         d = os.environ['ZIGLAMA_MODELS']\n\
         os.makedirs(d, exist_ok=True)\n\
         open(os.path.join(d, 'SmolLM2-135M-Instruct.Q4_1.gguf'), 'wb').write(b'GGUF')\n",
    )
    .unwrap();
    std::env::set_var("ZIGLAMA_FETCH_SCRIPT", &installing);
    let err = KnownModel::SmolLM2.ensure().unwrap_err();
    assert!(
        matches!(err, FetchError::WrongSize { found: 4, .. }),
        "{err:?}"
    );
    assert!(models.join(KnownModel::SmolLM2.file_name()).is_file());

    // A file of the pinned size is taken as installed, without running the script.
    std::env::set_var("ZIGLAMA_FETCH_SCRIPT", dir.join("missing.py"));
    let file = fs::File::create(models.join(KnownModel::SmolLM2.file_name())).unwrap();
    file.set_len(KnownModel::SmolLM2.size()).unwrap();
    assert_eq!(
        KnownModel::SmolLM2.ensure().unwrap(),
        models.join(KnownModel::SmolLM2.file_name())
    );

    let _ = fs::remove_dir_all(&dir);
}
