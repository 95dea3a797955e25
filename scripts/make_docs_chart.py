"""Draw docs/churn.png (README's chart) from the seeded 48-hour world nbval uses.

python scripts/make_docs_chart.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hnlab import analysis, plots  # noqa: E402
from tests.nbval_env import seed_environment  # noqa: E402


def main() -> None:
    cleanup = seed_environment()
    try:
        engine = analysis.engine()
        front = analysis.load_snapshots(engine=engine, top_n=30)
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), layout="constrained")
        plots.plot_churn(analysis.front_page_churn(front, top_n=30), ax=top)
        snapshots = analysis.load_snapshots(engine=engine)
        posts = analysis.load_posts(engine=engine)
        plots.plot_score_trajectories(
            snapshots,
            ax=bottom,
            top=6,
            titles=dict(zip(posts["hn_id"], posts["title"], strict=True)),
        )
        out = REPO / "docs" / "churn.png"
        out.parent.mkdir(exist_ok=True)
        fig.savefig(out, dpi=90)
        print(f"wrote {out}")
        engine.dispose()
    finally:
        cleanup()


if __name__ == "__main__":
    main()
