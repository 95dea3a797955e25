"""Store the expected outputs of the cells marked ``# NBVAL_CHECK_OUTPUT``, and nothing else.

Runs each analysis notebook against the seeded world nbval uses (tests/nbval_env.py),
keeps the outputs of the checked cells (they are nbval's expected values) and
strips every other output. Run it after changing a checked cell or the seeding:

    python scripts/refresh_notebook_outputs.py [NAME ...]   # default: every notebook
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hnlab.analysis.report import ANALYSIS_NOTEBOOKS  # noqa: E402
from tests.nbval_env import seed_environment  # noqa: E402

MARK = "# NBVAL_CHECK_OUTPUT"


def refresh(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}, timeout=300
    ).execute()
    kept = 0
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith(MARK):
            count += 1
            cell.execution_count = count
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = count
            kept += 1
        else:
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return kept


def main(names: list[str]) -> None:
    cleanup = seed_environment()
    try:
        for name in names or ANALYSIS_NOTEBOOKS:
            path = REPO / "notebooks" / f"{name}.ipynb"
            print(f"{path.name}: kept the outputs of {refresh(path)} checked cells")
    finally:
        cleanup()


if __name__ == "__main__":
    main(sys.argv[1:])
