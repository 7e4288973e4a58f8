#!/usr/bin/env python3
"""Fetch llama.cpp's tokenizer conformance files (models/ggml-vocab-*.gguf with .inp/.out).

Usage:
    python3 scripts/fetch_llama_vocab_tests.py [--templates] [--dir DIR] [--archive TAR_GZ]

llama.cpp's source tree carries, for each vocabulary it tests, a vocabulary-only GGUF file
(`ggml-vocab-NAME.gguf`), the test inputs (`.inp`, separated by lines
`__ggml_vocab_test__`) and the expected token ids (`.out`, one line per input). The tree
ships inside the source archive of the Python package llama-cpp-python (PyPI), under
`vendor/llama.cpp/models/`. This script downloads that archive with
`python3 -m pip download --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36` (or takes
the archive given with --archive), extracts only those files and installs them into

    $ZIGLAMA_MODELS/llama-vocab-tests/ if ZIGLAMA_MODELS is set, else
    <repository>/models/llama-vocab-tests/ (git-ignored).

With --templates it installs llama.cpp's chat templates instead (`models/templates/*.jinja`,
the real chat templates of many model families that llama.cpp tests against) into
`<models>/llama-templates/`.

The downloaded archive is kept next to the installed directories
(`.llama-cpp-python-0.3.36.tar.gz`), so the second kind needs no second download.

It is idempotent (a complete directory, marked by a `.complete` file, is left alone) and
safe to run concurrently (a file lock makes a second process wait for the first). On
success it prints the directory on standard output; progress goes to standard error.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "llama-cpp-python"
VERSION = "0.3.36"
MEMBER_DIR = "vendor/llama.cpp/models/"
MARKER = ".complete"


class Kind:
    """What to install: its directory name and which members of MEMBER_DIR it takes."""

    def __init__(self, dir_name: str, prefix: str, suffixes: tuple[str, ...], what: str) -> None:
        self.dir_name = dir_name
        self.prefix = prefix
        self.suffixes = suffixes
        self.what = what


VOCAB = Kind("llama-vocab-tests", "ggml-vocab-", (".gguf", ".gguf.inp", ".gguf.out"), "ggml-vocab-* files")
TEMPLATES = Kind("llama-templates", "templates/", (".jinja",), "templates/*.jinja files")


class FetchError(Exception):
    """A fetch failed; the message says what failed."""


def log(msg: str) -> None:
    print(f"fetch_llama_vocab_tests: {msg}", file=sys.stderr, flush=True)


def target_dir(override: str | None, kind: Kind) -> Path:
    if override:
        return Path(override)
    env = os.environ.get("ZIGLAMA_MODELS")
    base = Path(env) if env else Path(__file__).resolve().parent.parent / "models"
    return base / kind.dir_name


def download(dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", PACKAGE,
        "--disable-pip-version-check", "--progress-bar", "off",
        f"{PACKAGE}=={VERSION}", "-d", str(dest),
    ]
    log(f"downloading the {PACKAGE}=={VERSION} source archive from PyPI")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise FetchError(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}:\n{tail}")
    archives = sorted(dest.glob("llama_cpp_python-*.tar.gz")) + sorted(dest.glob("llama-cpp-python-*.tar.gz"))
    if not archives:
        raise FetchError(f"pip reported success but no source archive is in {dest}")
    return archives[0]


def cached_download(parent: Path) -> Path:
    """The source archive, downloaded once into `parent` (git-ignored with the models) and
    shared by both kinds, so that the vocabulary tests and the templates cost one download.
    A lock of its own (always taken inside a kind's lock) serializes the download."""
    path = parent / f".{PACKAGE}-{VERSION}.tar.gz"
    with (parent / f".{PACKAGE}-download.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            log(f"using the source archive {path}")
            return path
        with tempfile.TemporaryDirectory(prefix=".fetch-sdist-", dir=parent) as tmp:
            os.replace(download(Path(tmp)), path)
        return path


def wanted(name: str, kind: Kind) -> str | None:
    """The file name to install for an archive member, or None to skip it."""
    idx = name.find(MEMBER_DIR)
    if idx < 0:
        return None
    rest = name[idx + len(MEMBER_DIR):]
    if not rest.startswith(kind.prefix):
        return None
    rest = rest[len(kind.prefix):] if kind.prefix.endswith("/") else rest
    if "/" in rest or not rest:
        return None
    if rest.endswith(kind.suffixes):
        return rest
    return None


def extract(archive: Path, into: Path, kind: Kind) -> int:
    n = 0
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = wanted(member.name, kind)
                if name is None or not member.isfile():
                    continue
                src = tar.extractfile(member)
                if src is None:
                    continue
                with src, (into / name).open("wb") as out:
                    shutil.copyfileobj(src, out)
                n += 1
    except tarfile.TarError as e:
        raise FetchError(f"{archive} is not a valid source archive: {e}") from e
    if n == 0:
        raise FetchError(f"{archive} has no {MEMBER_DIR}{kind.what}")
    return n


def install(dest: Path, archive: Path | None, kind: Kind) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    lock_path = dest.parent / f".{kind.dir_name}.lock"
    with lock_path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another process is fetching the files; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / MARKER).exists():
            log(f"{dest} is present")
            return dest
        with tempfile.TemporaryDirectory(prefix=".fetch-vocab-", dir=dest.parent) as tmp:
            tmp_dir = Path(tmp)
            src = archive if archive else cached_download(dest.parent)
            staging = tmp_dir / "files"
            staging.mkdir()
            n = extract(src, staging, kind)
            (staging / MARKER).write_text(f"{PACKAGE}=={VERSION}\n")
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(staging, dest)
        log(f"installed {n} files into {dest}")
        return dest


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--templates", action="store_true", help="install the chat templates (models/templates/*.jinja) instead of the vocabulary tests")
    parser.add_argument("--dir", help="install directory (default: $ZIGLAMA_MODELS/llama-vocab-tests or <repo>/models/llama-vocab-tests; llama-templates with --templates)")
    parser.add_argument("--archive", help="use this llama-cpp-python source archive instead of downloading it")
    args = parser.parse_args(argv)
    try:
        kind = TEMPLATES if args.templates else VOCAB
        print(install(target_dir(args.dir, kind), Path(args.archive) if args.archive else None, kind), flush=True)
    except (FetchError, OSError) as e:
        log(f"error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
