"""Config module paths resolve from the working directory AFTER installed packages: a file
in the working directory never replaces an installed module."""

from __future__ import annotations

import sys
import uuid

from synaray.config.components import import_object


def test_cwd_file_does_not_shadow_an_installed_module(tmp_path, monkeypatch) -> None:
    name = f"shadowed_{uuid.uuid4().hex[:8]}"
    site = tmp_path / "site-packages"
    work = tmp_path / "work"
    site.mkdir()
    work.mkdir()
    marker = tmp_path / "MARKER"
    (site / f"{name}.py").write_text("WHERE = 'installed'\n")
    (work / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n"
                                     "WHERE = 'cwd'\n")
    (work / "my_builders.py").write_text("def build():\n    return 'built'\n")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(work))])
    monkeypatch.syspath_prepend(str(site))  # stands for the installed packages
    monkeypatch.chdir(work)
    assert import_object(f"{name}:WHERE", "run.yaml", "reward.name") == "installed"
    assert not marker.exists()
    # a module only in the working directory is still found, from the end of sys.path
    assert import_object("my_builders:build", "run.yaml", "program.builder")() == "built"
    assert sys.path[-1] == str(work) and sys.path.index(str(site)) < len(sys.path) - 1
    for module in (name, "my_builders"):
        sys.modules.pop(module, None)


def test_cwd_json_py_does_not_replace_the_json_module(tmp_path, monkeypatch) -> None:
    marker = tmp_path / "MARKER"
    (tmp_path / "json.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.chdir(tmp_path)
    saved = sys.modules.pop("json")
    try:
        loads = import_object("json:loads", "run.yaml", "reward.name")
        assert loads('{"a": 1}') == {"a": 1} and not marker.exists()
    finally:
        sys.modules["json"] = saved
