"""Writing outputs without ever losing a user's file.

A project folder carries a manifest listing the files tinydeploy wrote there; a later compile replaces
or removes only those. A non-empty folder without a manifest is refused, and nothing is removed
recursively. Single files go to a temporary sibling and are renamed into place. Every command checks
up front that no output is one of its inputs.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from .errors import TinydeployError

MANIFEST = ".tinydeploy-manifest"
_STAGING = ".tinydeploy-"


def _same(a: Path, b: Path) -> bool:
    """One file under two names (symlinks, hard links, `..`), or one path not yet created."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)   # never raises, even on a symlink loop


def check_distinct(inputs: dict[str, object], outputs: dict[str, object]) -> None:
    """Refuse an output that would replace an input or another output (labels name the options), or
    that cannot be created because a file stands where a folder of its path would be: checked before
    any work, so one output cannot be written while another then fails."""
    ins = [(k, Path(p)) for k, p in inputs.items() if p]
    outs = [(k, Path(p)) for k, p in outputs.items() if p]
    for j, (ko, o) in enumerate(outs):
        up = next(d for d in [o.parent, *o.parent.parents] if d.exists() or d.is_symlink())
        if not up.is_dir():
            raise TinydeployError(f"cannot write {ko} {o}: {up} is not a folder")
        for ki, i in ins + outs[:j]:
            if _same(o, i):
                raise TinydeployError(f"{ko} {o} is the same file as {ki} {i}; refusing to overwrite it")


def write_file_atomic(path: Path, data: bytes | str) -> None:
    """Write a whole file or nothing; a symlink is followed, an existing file keeps its mode."""
    path = Path(os.path.realpath(path))   # Path.resolve raises on a symlink loop
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        if path.exists():
            shutil.copymode(path, tmp)
        tmp.replace(path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise TinydeployError(f"cannot write {path}: {e.strerror}") from None


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


class Staged:
    """A project folder written whole or not at all: the files are built in a staging folder inside it
    and moved into place at the end. `-o` a symlink to a folder writes into that folder."""

    def __init__(self, target: Path, inputs: tuple = (), others: dict | None = None):
        """others: the command's other outputs by option (e.g. --report), which no project file may be."""
        self.target, self.inputs = Path(target), [Path(p) for p in inputs]
        self.others = {k: Path(p) for k, p in (others or {}).items() if p}
        self.old = self._owned()
        # the outermost folder this run creates: a failed run removes it and what it holds, if empty
        self.created = next((d for d in reversed([self.target, *self.target.parents])
                             if not d.is_dir() and not d.is_symlink()), None)
        try:
            self.target.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=_STAGING, dir=self.target))
        except OSError as e:
            raise TinydeployError(f"cannot write to {self.target}: {e.strerror}") from None

    def _owned(self) -> set[str]:
        """The files a previous run wrote here (empty for a new or empty folder); refuse anything else."""
        t = self.target
        if t.exists() and not t.is_dir() or t.is_symlink() and not t.exists():
            raise TinydeployError(f"cannot write to {t}: it exists and is not a folder")
        if not t.is_dir():
            return set()
        # a killed compile's staging folder (ours by its name) does not make the folder foreign; it is
        # left where it is (nothing is removed that this run did not create)
        if all(e.name.startswith(_STAGING) and e.is_dir() and not e.is_symlink() for e in t.iterdir()) \
                and not (t / MANIFEST).exists():
            return set()
        if (t / MANIFEST).is_symlink() or not (t / MANIFEST).is_file():
            raise TinydeployError(f"-o {t}: the folder is not empty and was not written by tinydeploy "
                                  f"(no {MANIFEST}); give a new or empty folder")
        try:
            owned = set((t / MANIFEST).read_text().split())
        except (OSError, UnicodeDecodeError) as e:
            raise TinydeployError(f"cannot read {t / MANIFEST}: {getattr(e, 'strerror', None) or e.reason}") from None
        for rel in owned:
            p = PurePosixPath(rel)
            if p.is_absolute() or ".." in p.parts or rel == MANIFEST or rel.startswith(_STAGING) or "\0" in rel:
                raise TinydeployError(f"{t / MANIFEST}: entry {rel!r} is not a file of this folder")
        return owned

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, *_):
        try:
            if exc_type is None:
                self._commit()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)   # the staging folder is ours alone
            if exc_type is not None and self.created:
                _rmdir_empty(self.target, self.created.parent)
        return False

    def _commit(self) -> None:
        new = _files(self.tmp)
        for rel in sorted(set(new) | self.old):
            dest = self.target / rel
            # a symlinked folder inside the project would carry writes and removals outside it
            for d in PurePosixPath(rel).parents:
                if str(d) != "." and (self.target / d).is_symlink():
                    raise TinydeployError(f"{self.target / d} is a symlink; refusing to write through it")
            if rel not in self.old and (dest.exists() or dest.is_symlink()):
                raise TinydeployError(f"{dest} exists and was not written by tinydeploy; refusing to replace it")
            for i in self.inputs:
                if dest.exists() and _same(dest, i):
                    raise TinydeployError(f"{dest} is the input {i}; refusing to replace it")
            for k, o in self.others.items():
                if rel in new and _same(dest, o):
                    raise TinydeployError(f"{k} {o} would replace the project's {rel}; give another path")
        # the manifest covers every file this run may leave behind before any of them is moved
        write_file_atomic(self.target / MANIFEST, "\n".join(sorted(set(new) | self.old)) + "\n")
        try:
            for rel in new:
                (self.target / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.tmp / rel, self.target / rel)
            for rel in self.old - set(new):
                stale = self.target / rel
                if stale.is_file() or stale.is_symlink():
                    stale.unlink()
                    _rmdir_empty(stale.parent, self.target)
        except OSError as e:
            raise TinydeployError(f"cannot write to {self.target}: {e.strerror}") from None
        write_file_atomic(self.target / MANIFEST, "\n".join(new) + "\n")


def _rmdir_empty(d: Path, stop: Path) -> None:
    """Remove d and its parents up to (not including) stop while they are empty."""
    while d != stop and d.is_dir() and not any(d.iterdir()):
        d.rmdir()
        d = d.parent
