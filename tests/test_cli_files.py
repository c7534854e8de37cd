"""The CLI never loses a user's file: it replaces only what it wrote and never writes over an input."""
import os
import subprocess

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from tinydeploy.cli import main
from tinydeploy.errors import TinydeployError
from tinydeploy.files import write_file_atomic
from test_cli_errors import _assert_one_line_error, _relu

MANIFEST = ".tinydeploy-manifest"


def _cli(*args, cwd=None, umask=None):
    """The CLI in this process (fast), as a CompletedProcess; cwd and umask set around the call."""
    old_cwd, old_umask = os.getcwd(), os.umask(umask if umask is not None else 0o022)
    if umask is None:
        os.umask(old_umask)
    try:
        os.chdir(cwd or old_cwd)
        r = CliRunner().invoke(main, [str(a) for a in args])
    finally:
        os.chdir(old_cwd)
        os.umask(old_umask)
    return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)


def _tree(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _no_staging_left(*dirs):
    for d in dirs:
        assert not [p for p in d.rglob(".tinydeploy-*") if p.name != MANIFEST], list(d.rglob(".tinydeploy-*"))


@pytest.fixture
def work(tmp_path):
    onnx.save(_relu(), tmp_path / "m.onnx")
    (tmp_path / "notes.txt").write_text("mine")
    return tmp_path


def test_compile_refuses_a_folder_it_did_not_write(work):
    before = _tree(work)
    _assert_one_line_error(_cli("compile", work / "m.onnx", "-o", work), "not written by tinydeploy")
    _assert_one_line_error(_cli("compile", "m.onnx", "-o", ".", cwd=work), "not written by tinydeploy")
    (work / "sub").mkdir()
    _assert_one_line_error(_cli("compile", "../m.onnx", "-o", "..", cwd=work / "sub"), "not written by tinydeploy")
    assert _tree(work) == before
    _no_staging_left(work)


def test_folder_holding_only_a_killed_compiles_staging_folder_is_usable(tmp_path):
    onnx.save(_relu(), tmp_path / "m.onnx")
    (tmp_path / "k1" / ".tinydeploy-abc").mkdir(parents=True)
    r = _cli("compile", tmp_path / "m.onnx", "-o", tmp_path / "k1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "k1" / "td_network.c").is_file() and (tmp_path / "k1" / ".tinydeploy-abc").is_dir()


def test_compile_into_an_empty_current_folder(tmp_path):
    onnx.save(_relu(), tmp_path / "m.onnx")
    (tmp_path / "out").mkdir()
    r = _cli("compile", "../m.onnx", "-o", ".", cwd=tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "td_network.c").is_file() and (tmp_path / "m.onnx").is_file()
    _no_staging_left(tmp_path)


def test_recompile_replaces_only_its_own_files(work):
    out = work / "proj"
    assert _cli("compile", work / "m.onnx", "-o", out).returncode == 0
    written = set((out / MANIFEST).read_text().split())
    assert written == set(_tree(out)) - {MANIFEST} and "td_network.c" in written
    (out / "main.c").write_text("user code")                  # the user's file beside the project
    (out / "runtime" / "old.h").write_text("stale")           # a file an earlier version wrote
    (out / MANIFEST).write_text("\n".join(sorted(written | {"runtime/old.h"})) + "\n")
    (out / "td_network.c").write_text("edited")
    r = _cli("compile", work / "m.onnx", "-o", out)
    assert r.returncode == 0, r.stderr
    assert (out / "main.c").read_text() == "user code"
    assert not (out / "runtime" / "old.h").exists() and (out / "td_network.c").read_text() != "edited"
    assert set((out / MANIFEST).read_text().split()) == written
    # a file of the user's under a name tinydeploy writes is not replaced
    (out / MANIFEST).write_text("\n".join(sorted(written - {"Makefile"})) + "\n")
    (out / "Makefile").write_text("user's")
    _assert_one_line_error(_cli("compile", work / "m.onnx", "-o", out), "not written by tinydeploy")
    assert (out / "Makefile").read_text() == "user's" and (out / "main.c").read_text() == "user code"
    # a manifest cannot point outside its folder
    (out / MANIFEST).write_text("../notes.txt\n")
    _assert_one_line_error(_cli("compile", work / "m.onnx", "-o", out), "not a file of this folder")
    (out / MANIFEST).write_text("\n".join(sorted(written)) + "\na\0b\n")
    _assert_one_line_error(_cli("compile", work / "m.onnx", "-o", out), "not a file of this folder")
    (out / MANIFEST).write_bytes(b"\xff\xfe\n")
    _assert_one_line_error(_cli("compile", work / "m.onnx", "-o", out), "cannot read")
    assert (work / "notes.txt").read_text() == "mine"
    _no_staging_left(work)


def test_model_inside_a_previous_output_is_kept(work):
    out = work / "proj"
    assert _cli("compile", work / "m.onnx", "-o", out).returncode == 0
    (work / "m.onnx").rename(out / "m.onnx")
    r = _cli("compile", out / "m.onnx", "-o", out)
    assert r.returncode == 0, r.stderr
    assert onnx.load(out / "m.onnx") == _relu()
    # listed in the manifest (hand-edited), the model is still not replaced
    (out / MANIFEST).write_text((out / MANIFEST).read_text() + "td_network.c\n")
    os.replace(out / "m.onnx", out / "td_network.c")
    _assert_one_line_error(_cli("compile", out / "td_network.c", "-o", out), "is the input")
    assert onnx.load(out / "td_network.c") == _relu()


def test_output_folder_keeps_the_umask_mode(work):
    assert _cli("compile", work / "m.onnx", "-o", work / "a" / "proj", umask=0o027).returncode == 0
    assert (work / "a" / "proj").stat().st_mode & 0o777 == 0o750
    assert (work / "a" / "proj" / "td_network.c").stat().st_mode & 0o777 == 0o640


def test_output_symlink_is_followed_or_refused(work):
    (work / "real").mkdir()
    (work / "link").symlink_to(work / "real")
    r = _cli("compile", work / "m.onnx", "-o", work / "link")
    assert r.returncode == 0, r.stderr
    assert (work / "link").is_symlink() and (work / "real" / "td_network.c").is_file()
    (work / "dangling").symlink_to(work / "nowhere")
    _assert_one_line_error(_cli("compile", work / "m.onnx", "-o", work / "dangling"), "not a folder")
    assert not (work / "nowhere").exists()
    _no_staging_left(work)


def test_failed_compile_leaves_nothing(work):
    (work / "bad.onnx").write_bytes(b"not onnx")
    _assert_one_line_error(_cli("compile", work / "bad.onnx", "-o", work / "new"), "cannot read")
    assert not (work / "new").exists()
    _assert_one_line_error(_cli("compile", work / "bad.onnx", "-o", work / "a" / "b" / "new"), "cannot read")
    assert not (work / "a").exists()
    (work / "empty").mkdir()
    _assert_one_line_error(_cli("compile", work / "bad.onnx", "-o", work / "empty"), "cannot read")
    assert (work / "empty").is_dir() and not any((work / "empty").iterdir())


def _same_file_cases(w):
    m, ins, ck = w / "m.onnx", w / "in.npz", w / "ck.bin"
    return {
        "run_outputs_is_model": (["run", m, "--inputs", ins, "--outputs", m], "--outputs"),
        "run_report_is_inputs": (["run", m, "--inputs", ins, "--outputs", w / "o.npz", "--report", ins], "--report"),
        "run_report_is_outputs": (["run", m, "--inputs", ins, "--outputs", w / "o.npz", "--report", w / "o.npz"],
                                  "--report"),
        "run_outputs_hardlink_of_inputs": (["run", m, "--inputs", ins, "--outputs", w / "hard.npz"], "--outputs"),
        "compile_report_is_model": (["compile", m, "-o", w / "p", "--report", w / "link.onnx"], "--report"),
        "export_llama_onto_checkpoint": (["export-llama", ck, "-o", ck], "-o"),
        "generate_report_is_checkpoint": (["generate", "--model", ck, "--report", ck], "--report"),
    }


@pytest.mark.parametrize("case", sorted(_same_file_cases(__import__("pathlib").Path("."))))
def test_output_equal_to_an_input_is_refused(case, work):
    np.savez(work / "in.npz", x=np.ones((1, 4), np.float32))
    os.link(work / "in.npz", work / "hard.npz")
    (work / "link.onnx").symlink_to(work / "m.onnx")
    (work / "ck.bin").write_bytes(b"checkpoint bytes")
    before = _tree(work)
    args, needle = _same_file_cases(work)[case]
    r = _cli(*args)
    _assert_one_line_error(r, needle)
    assert "same file" in r.stderr
    assert _tree(work) == before and not (work / "p").exists()


def test_single_files_keep_mode_and_follow_symlinks(work):
    np.savez(work / "in.npz", x=np.ones((1, 4), np.float32))
    (work / "o.npz").write_bytes(b"old")
    (work / "o.npz").chmod(0o600)
    (work / "r.json").symlink_to(work / "real.json")
    r = _cli("run", work / "m.onnx", "--inputs", work / "in.npz", "--outputs", work / "o.npz", "--report", work / "r.json")
    assert r.returncode == 0, r.stderr
    assert (work / "o.npz").stat().st_mode & 0o777 == 0o600 and np.load(work / "o.npz")["y"].shape == (1, 4)
    assert (work / "r.json").is_symlink() and (work / "real.json").read_text().startswith("{")
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]


def test_symlinks_inside_the_project_are_not_followed(work):
    out, victim = work / "proj", work / "victim"
    assert _cli("compile", work / "m.onnx", "-o", out).returncode == 0
    victim.mkdir()
    (victim / "precious.txt").write_text("mine")
    (victim / "td_common.h").write_text("mine")
    for p in (out / "runtime").iterdir():
        p.unlink()
    (out / "runtime").rmdir()
    (out / "runtime").symlink_to(victim)                       # a folder of the project points outside
    (out / MANIFEST).write_text((out / MANIFEST).read_text() + "runtime/precious.txt\n")
    before = _tree(victim)
    _assert_one_line_error(_cli("compile", work / "m.onnx", "-o", out), "symlink")
    assert _tree(victim) == before
    # the manifest itself a symlink to a user's file: that file is not rewritten
    (out / "runtime").unlink()
    (out / MANIFEST).unlink()
    (work / "list.txt").write_text("td_network.c\n")
    (out / MANIFEST).symlink_to(work / "list.txt")
    _assert_one_line_error(_cli("compile", work / "m.onnx", "-o", out), "not written by tinydeploy")
    assert (work / "list.txt").read_text() == "td_network.c\n"
    _no_staging_left(work)


def test_an_output_under_a_file_is_refused_before_any_output(work):
    np.savez(work / "in.npz", x=np.ones((1, 4), np.float32))
    run = ["run", work / "m.onnx", "--inputs", work / "in.npz"]
    _assert_one_line_error(_cli(*run, "--outputs", work / "o.npz", "--report", work / "notes.txt" / "r.json"),
                           "notes.txt is not a folder")
    _assert_one_line_error(_cli(*run, "--outputs", work / "notes.txt" / "a" / "o.npz"), "is not a folder")
    _assert_one_line_error(_cli("compile", work / "m.onnx", "-o", work / "p", "--report", work / "notes.txt" / "r"),
                           "is not a folder")
    assert not (work / "o.npz").exists() and not (work / "p").exists()
    with pytest.raises(TinydeployError, match="cannot write"):   # the file is checked here too
        write_file_atomic(work / "notes.txt" / "r.json", "{}")


def test_a_symlink_loop_is_one_error(work):
    (work / "loop1").symlink_to(work / "loop2")
    (work / "loop2").symlink_to(work / "loop1")
    _assert_one_line_error(_cli("compile", work / "loop1", "-o", work / "p"), "cannot read")
    _assert_one_line_error(_cli("compile", work / "m.onnx", "-o", work / "p", "--report", work / "loop1" / "r"),
                           "cannot write")
    assert not (work / "p").exists()


def test_report_cannot_replace_a_project_file(work):
    out = work / "proj"
    for rounds in range(2):   # a new folder, then a project already there
        r = _cli("compile", work / "m.onnx", "-o", out, "--report", out / "td_network.c")
        _assert_one_line_error(r, "--report")
        assert "would replace the project's td_network.c" in r.stderr
        assert not (out / "td_network.c").exists() or (out / "td_network.c").read_text().startswith("/*")
        assert _cli("compile", work / "m.onnx", "-o", out).returncode == 0
    assert _cli("compile", work / "m.onnx", "-o", out, "--report", out / "REPORT.json").returncode == 0
    _no_staging_left(work)
