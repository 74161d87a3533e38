"""rnn_core is a plain library a notebook can use: it imports no UI code (README, "Layout")."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rnn_core

UI = {"streamlit", "plotly", "dashboard"}
MODULES = sorted(Path(rnn_core.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_rnn_core_module_imports_ui_code(path):
    tree = ast.parse(path.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert not imported & UI, f"{path.name} imports {sorted(imported & UI)}"


def test_importing_every_rnn_core_module_loads_no_ui_package():
    names = [f"rnn_core.{p.stem}" for p in MODULES if p.stem != "__init__"]
    code = ("import importlib, sys\n"
            f"for name in {names!r}: importlib.import_module(name)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(UI)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(rnn_core.__file__).parent.parent)
    assert out.stdout.strip() == "[]"
