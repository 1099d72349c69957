"""The files the playground page (``book/playground.md``) downloads, written into the build.

    write_playground(Path("_build/html/_static/playground"))

The page runs the course's models in the reader's browser, with the JavaScript engine under
``_static/playground/``. It needs, beside that engine:

* each model exported by `llmscratch.export.export_model` as int8 (about 5 MB each, read by
  ``gpt.js``): the course model of Part 3, and the instruction-tuned (SFT) and preference-tuned
  (DPO) models of Part 5, from the ``.pt`` files committed under ``data/``;
* the course tokenizer, ``data/bpe_tokenizer.json``, as it is (read by ``bpe.js``);
* ``models.json``, the manifest: which models there are and how to label them, each file's size and
  a digest of its contents (the page asks for ``file?v=<digest>``, so a browser never mixes a new
  page with an old cached model), the instruction format, and one held-out instruction per task
  of `llmscratch.instructions` to pre-fill the prompt with.

None of these files is committed: the Sphinx extension writes them at the end of every HTML build
(`write_playground`), and skips the export when the manifest says its inputs have not changed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

MANIFEST = "models.json"
TOKENIZER = "bpe_tokenizer.json"
MAX_MODEL_BYTES = 10_000_000  # a reader on a phone downloads each model they open
DTYPE = "int8"


def _course() -> Any:
    from llmscratch import load_course_model

    return load_course_model(verify=False)[0]


def _sft() -> Any:
    from llmscratch.sft import load_sft_model

    return load_sft_model()[0]


def _dpo() -> Any:
    from llmscratch.reward import load_dpo_model

    return load_dpo_model()[0]


# key, label (the menu's), name (in a sentence), the committed weights it is made from, how to load
# them, whether it reads instructions.
MODELS: tuple[tuple[str, str, str, str, Callable[[], Any], bool], ...] = (
    ("course", "Course model (Part 3: Tiny Shakespeare)", "the course model", "course_model.pt", _course, False),
    ("sft", "Instruction-tuned (Part 5: SFT)", "the instruction-tuned model", "part5_sft.pt", _sft, True),
    ("dpo", "Preference-tuned (Part 5: DPO)", "the DPO model", "part5_dpo.pt", _dpo, True),
)


def _inputs() -> list[Path]:
    """Everything the written files are computed from: the weights, the tokenizer, and the code that exports them."""
    import llmscratch.export
    import llmscratch.instructions
    from llmscratch.data import results_dir

    data = results_dir()
    return ([data / pt for _, _, _, pt, _, _ in MODELS] + [data / TOKENIZER, Path(__file__),
            Path(llmscratch.export.__file__), Path(llmscratch.instructions.__file__)])


def inputs_digest() -> str:
    digest = hashlib.sha256()
    for path in _inputs():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _examples() -> list[dict[str, str]]:
    """The first held-out instruction of each task (`llmscratch.instructions`, seed 0), with its reference answer."""
    from llmscratch.data import load_text
    from llmscratch.instructions import TASKS, make_instructions

    val = make_instructions(load_text("tinyshakespeare"))["val"]
    first = {}
    for example in val:
        first.setdefault(example.task, example)
    return [{"task": task, "instruction": first[task].instruction, "response": first[task].response}
            for task in TASKS if task in first]


def is_current(folder: Path) -> bool:
    """True when `folder` holds a manifest written from the present inputs, and every file it names."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    files = [m["file"] for m in manifest.get("models", [])] + [manifest.get("tokenizer", {}).get("file", "")]
    return manifest.get("inputs") == inputs_digest() and all((folder / f).is_file() for f in files if f)


def write_playground(folder: Path, force: bool = False) -> dict[str, Any]:
    """Write the models, the tokenizer and the manifest into `folder`; returns the manifest.

    Does nothing (and returns the manifest already there) when `is_current`, unless `force`.
    Raises `ValueError` if an exported model is larger than `MAX_MODEL_BYTES`.
    """
    from llmscratch.data import results_dir
    from llmscratch.export import DEFAULT_PROMPT, export_model
    from llmscratch.instructions import END, INSTRUCTION_HEADER, RESPONSE_HEADER

    folder = Path(folder)
    if not force and is_current(folder):
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(results_dir() / TOKENIZER, folder / TOKENIZER)
    models = []
    for key, label, name, source, load, instruction in MODELS:
        path = folder / f"{key}-{DTYPE}.bin"
        size = export_model(load(), path, DTYPE)
        if size > MAX_MODEL_BYTES:
            raise ValueError(f"{path.name} is {size:,} bytes, more than the playground's {MAX_MODEL_BYTES:,}")
        models.append({"key": key, "label": label, "name": name, "file": path.name, "bytes": size,
                       "digest": _file_digest(path), "source": f"data/{source}", "instruction": instruction})
    manifest = {
        "format": "llmscratch.playground", "version": 1, "inputs": inputs_digest(), "dtype": DTYPE,
        "tokenizer": {"file": TOKENIZER, "digest": _file_digest(folder / TOKENIZER)},
        "models": models,
        "stop_token": END,
        "prompt": DEFAULT_PROMPT,
        "instruction_format": {"before": INSTRUCTION_HEADER, "after": RESPONSE_HEADER},
        "examples": _examples(),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest
