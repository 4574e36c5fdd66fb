"""The model catalogue: a data file (assets/catalogue.json) read into plain objects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from explorer.registry import FAMILIES as REGISTERED

ASSETS = Path(__file__).resolve().parent.parent / "assets"
FAMILIES = tuple(REGISTERED)  # catalogue order = registry order
# The encoder-decoder page's two input kinds, each with its embedded model.
TRANSLATOR_ID = "embedded:marian-en-pt-tiny"  # text: English -> Portuguese, trained by this project
SPEECH_ID = "embedded:whisper-tiny.en"  # speech: English audio -> English text


@dataclass(frozen=True)
class CatalogueEntry:
    id: str
    label: str
    source: str = ""
    license: str = ""
    trained_by: str = ""
    metrics: str = ""  # measured numbers shown beside a model the project trained

    @property
    def embedded(self) -> bool:
        return self.id.startswith("embedded:")


@dataclass(frozen=True)
class FamilyEntry:
    key: str
    title: str
    default: str
    models: tuple[CatalogueEntry, ...]

    def find(self, model_id: str) -> CatalogueEntry | None:
        return next((m for m in self.models if m.id == model_id), None)


@lru_cache(maxsize=1)
def load_catalogue(path: Path = ASSETS / "catalogue.json") -> dict[str, FamilyEntry]:
    raw = json.loads(path.read_text(encoding="utf-8"))["families"]
    families = {}
    for key in FAMILIES:
        f = raw[key]
        models = tuple(CatalogueEntry(**m) for m in f["models"])
        families[key] = FamilyEntry(key=key, title=REGISTERED[key].title, default=f["default"], models=models)
        if families[key].find(f["default"]) is None:
            raise ValueError(f"catalogue: default {f['default']!r} of {key} is not among its models")
    return families


PROJECT_MODELS = ASSETS / "models"  # the models this project trained or converted (the one definition)
# The project's MoE and its dense twin share one comparison: both logs belong to either id.
TWIN_RUNS = {"moe": "moe-tiny-austen", "dense": "dense-twin-austen"}


@lru_cache(maxsize=8)
def training_logs(model_id: str) -> dict[str, dict]:
    """{'moe': log, 'dense': log} when ``model_id`` is one of the project's twin runs. Read once per
    process (the MoE page asks on every rerun); the dicts are shared: read them, never change them."""
    name = model_id.removeprefix("embedded:")
    if name not in TWIN_RUNS.values():
        return {}
    logs = {}
    for kind, folder in TWIN_RUNS.items():
        path = PROJECT_MODELS / folder / "training_log.json"
        if path.exists():
            logs[kind] = json.loads(path.read_text())
    return logs
