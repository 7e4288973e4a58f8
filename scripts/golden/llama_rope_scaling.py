#!/usr/bin/env python3
"""Golden data for RoPE scaling (ziglama-model/tests/llama_rope_scaling.rs), from llama.cpp.

SmolLM2 is copied with RoPE scaling metadata added (with gguf-py's copy from llama.cpp's
gguf_new_metadata.py), and llama.cpp gives, for a few prompts of the main golden set, the
last prompt position's logits, written as little-endian f32 to rope_<variant>_<prompt>.f32.
The prompt tokens are those of cases.tsv (llama_smollm2.py); the variants:
  yarn:   rope.scaling.type = yarn, factor 4, original_context_length 2048
  linear: rope.scaling.type = linear, factor 2

Run with the peer's Python:
    ~/.cache/ziglama-peer/venv/bin/python scripts/golden/llama_rope_scaling.py MODEL.gguf OUT_DIR
"""
import os, sys, tempfile

PEER_TOOLS = os.environ.get("ZIGLAMA_PEER_TOOLS", "/work/shared/tools")
LLAMA_CPP = os.environ.get(
    "ZIGLAMA_LLAMA_CPP",
    os.path.expanduser("~/.cache/ziglama-peer/src/llama_cpp_python-0.3.36/vendor/llama.cpp"))
sys.path.insert(0, PEER_TOOLS)
sys.path.insert(0, os.path.join(LLAMA_CPP, "gguf-py"))
import gguf  # noqa: E402
from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata  # noqa: E402
import peer  # noqa: E402

VARIANTS = {
    "yarn": {"llama.rope.scaling.type": (gguf.GGUFValueType.STRING, "yarn"),
             "llama.rope.scaling.factor": (gguf.GGUFValueType.FLOAT32, 4.0),
             "llama.rope.scaling.original_context_length": (gguf.GGUFValueType.UINT32, 2048)},
    "linear": {"llama.rope.scaling.type": (gguf.GGUFValueType.STRING, "linear"),
               "llama.rope.scaling.factor": (gguf.GGUFValueType.FLOAT32, 2.0)},
}
PROMPTS = ["story", "code_rust", "chat_simple"]


def main():
    model_path, out_dir = sys.argv[1], sys.argv[2]
    cases = {}
    with open(os.path.join(out_dir, "cases.tsv")) as f:
        for line in f:
            name, prompt = line.split("\t")[:2]
            cases[name] = [int(t) for t in prompt.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for variant, keys in VARIANTS.items():
            path = os.path.join(tmp, variant + ".gguf")
            reader = gguf.GGUFReader(model_path, "r")
            arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
            writer = gguf.GGUFWriter(path, arch=arch, endianess=reader.endianess)
            new = {k: MetadataDetails(t, v) for k, (t, v) in keys.items()}
            copy_with_new_metadata(reader, writer, new, [])
            m = peer.load(path)
            for name in PROMPTS:
                m.reset()
                m.eval(cases[name])
                peer.last_logits(m).astype("<f4").tofile(
                    os.path.join(out_dir, f"rope_{variant}_{name}.f32"))
                print(variant, name, file=sys.stderr)
            del m


if __name__ == "__main__":
    main()
