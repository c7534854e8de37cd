"""Model importers (llama2.c) and the models bundled with tinydeploy."""

from importlib import resources
from pathlib import Path

#: Name of the bundled default model (see data/stories260K/README.md).
DEFAULT_MODEL = "stories260K"


def bundled_path(name: str) -> Path:
    """Path of a file of the bundled stories260K model, e.g. ``bundled_path("tok512.bin")``.

    Goes through importlib.resources so it also works from an installed (non-editable) wheel.
    """
    return Path(str(resources.files(__package__) / "data" / DEFAULT_MODEL / name))


def default_checkpoint_path() -> Path:
    return bundled_path("stories260K_q80.bin")


def default_tokenizer_path() -> Path:
    return bundled_path("tok512.bin")
