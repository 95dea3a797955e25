"""Notebook hygiene: thin, parameterised, no committed outputs but nbval's expected ones."""

import ast
import re
from pathlib import Path

import nbformat
import pytest

import hnlab

from .helpers import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
MARK = "# NBVAL_CHECK_OUTPUT"


def code_cells(path: Path) -> list[nbformat.NotebookNode]:
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_nine_notebooks_are_there() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "attention.ipynb",
        "churn.ipynb",
        "collect.ipynb",
        "content.ipynb",
        "discussions.ipynb",
        "runs_and_cache.ipynb",
        "scores.ipynb",
        "story_paths.ipynb",
        "trends.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_only_checked_cells_keep_outputs(path: Path) -> None:
    for cell in code_cells(path):
        if cell.source.lstrip().startswith(MARK):
            continue
        assert cell.outputs == [], f"{path.name}: outputs committed in {cell.source[:40]!r}"
        assert cell.execution_count is None
    for cell in code_cells(path):
        for output in cell.outputs:
            assert "image/png" not in output.get("data", {}), "charts are never committed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_then_one_import_cell_and_no_definitions(path: Path) -> None:
    cells = code_cells(path)
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and cells[0] is tagged[0]
    assert all(isinstance(n, ast.Assign) for n in ast.parse(cells[0].source).body)
    imports = [
        c
        for c in cells
        if any(isinstance(n, ast.Import | ast.ImportFrom) for n in ast.parse(c.source).body)
    ]
    assert imports == [cells[1]]
    for cell in cells:
        tree = ast.parse(re.sub(r"^%.*$", "", cell.source, flags=re.M))
        assert not [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda)
        ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_import_only_the_public_api(path: Path) -> None:
    allowed = set(hnlab.__all__) | {"analysis", "plots"}
    for node in ast.walk(ast.parse(code_cells(path)[1].source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hnlab"):
            assert node.module == "hnlab", node.module
            assert {a.name for a in node.names} <= allowed


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.name != "collect.ipynb"], ids=lambda p: p.name
)
def test_analysis_notebooks_check_real_values(path: Path) -> None:
    checked = [c for c in code_cells(path) if c.source.lstrip().startswith(MARK)]
    assert checked and all(c.outputs for c in checked)
