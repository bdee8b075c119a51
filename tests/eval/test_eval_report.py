"""Report numbers against hand-computed tables; filters; formats; comparison; plots."""

import csv
import io
import math

import pytest
from eval_helpers import add_session, outcomes

from eval.report import (
    build_report,
    cells_csv,
    compare,
    parse_time_bound,
    summary_csv,
    to_latex,
    to_markdown,
    write_report,
)
from eval.stats import newcombe_difference
from eval.trial_log import TrialLog
from remix.common.errors import RemixError


@pytest.fixture
def log(tmp_path):
    with TrialLog.create(tmp_path / "trials.sqlite") as log:
        # WidowX session on Nov 1: remix 7/10 and 5/10 (+1 robot fault), uniform 4/10 and 2/10.
        add_session(log, "widowx-nov1", "widowx", {
            ("carrot", "remix"): outcomes(7, 3), ("carrot", "uniform"): outcomes(4, 6),
            ("cup", "remix"): outcomes(5, 5, faults=1), ("cup", "uniform"): outcomes(2, 8)}, day="2026-11-01")
        # Franka session on Nov 3: remix 6/10 and 9/10, uniform 6/10 and 3/10.
        add_session(log, "franka-nov3", "franka", {
            ("pen", "remix"): outcomes(6, 4), ("pen", "uniform"): outcomes(6, 4),
            ("bowl", "remix"): outcomes(9, 1), ("bowl", "uniform"): outcomes(3, 7)}, day="2026-11-03")
        yield log


def test_cells_and_summaries_match_hand_computed_table(log):
    report = build_report(log.trials())
    assert report.robots == ("widowx", "franka")
    assert report.tasks == {"widowx": ("carrot", "cup"), "franka": ("pen", "bowl")}
    cup = report.cell("widowx", "cup", "remix")
    assert (cup.successes, cup.failures, cup.robot_faults, cup.trials) == (5, 5, 1, 10)  # faults are not scored
    assert cup.rate == pytest.approx(0.5)
    # mean +- s.e. across tasks: s.e. = |a - b| / 2 for two tasks (sample sd / sqrt(2))
    expected = {("widowx", "remix"): (0.60, 0.10), ("widowx", "uniform"): (0.30, 0.10),
                ("franka", "remix"): (0.75, 0.15), ("franka", "uniform"): (0.45, 0.15)}
    for key, (mean, se) in expected.items():
        summary = report.summaries[key].across_tasks
        assert summary.mean == pytest.approx(mean) and summary.stderr == pytest.approx(se) and summary.num_tasks == 2
    assert (report.summaries[("franka", "remix")].successes, report.summaries[("franka", "remix")].trials) == (15, 20)


def test_markdown_table(log):
    text = to_markdown(build_report(log.trials()))
    assert "| carrot | 7/10 (70%, 40%–89%) | 4/10 (40%, 17%–69%) |" in text
    assert "| cup | 5/10 (50%, 24%–76%) +1 fault | 2/10 (20%, 6%–51%) |" in text
    assert "| **mean ± s.e. across tasks** | 60.0 ± 10.0% | 30.0 ± 10.0% |" in text
    assert "| **mean ± s.e. across tasks** | 75.0 ± 15.0% | 45.0 ± 15.0% |" in text


def test_markdown_lists_the_sessions_behind_the_numbers(log):
    text = to_markdown(build_report(log.trials()))
    assert "| widowx-nov1 | widowx | 41 | 2026-11-01 10:01 | 2026-11-01 10:41 | tester |" in text
    assert "| franka-nov3 | franka | 40 | 2026-11-03 10:01 | 2026-11-03 10:40 | tester |" in text


def test_csv_and_latex(log):
    report = build_report(log.trials())
    rows = list(csv.DictReader(io.StringIO(cells_csv(report))))
    assert len(rows) == 8
    carrot = next(r for r in rows if r["task"] == "carrot" and r["policy"] == "remix")
    assert (carrot["successes"], carrot["failures"], carrot["trials"]) == ("7", "3", "10")
    assert float(carrot["wilson_low"]) == pytest.approx(0.3968, abs=1e-4)
    assert float(carrot["wilson_high"]) == pytest.approx(0.8922, abs=1e-4)
    summary = {(r["robot"], r["policy"]): r for r in csv.DictReader(io.StringIO(summary_csv(report)))}
    assert float(summary[("franka", "uniform")]["mean_success_rate"]) == pytest.approx(0.45)
    assert float(summary[("franka", "uniform")]["stderr"]) == pytest.approx(0.15)
    tex = to_latex(report)
    assert r"carrot & 7/10 & 4/10 \\" in tex
    assert r"Mean $\pm$ s.e. & $60.0 \pm 10.0$\% & $30.0 \pm 10.0$\% \\" in tex
    assert tex.count(r"\begin{tabular}") == 2


def test_latex_escapes_names(tmp_path):
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        add_session(log, "s", "wx_250", {("cube_to_50%", "re&mix"): outcomes(1, 1)}, day="2026-11-01",
                    policies=("re&mix",))
        tex = to_latex(build_report(log.trials()))
    assert r"cube\_to\_50\% & 1/2" in tex and r"re\&mix" in tex and r"wx\_250" in tex


def test_filters_by_session_robot_and_date(log):
    assert {r.robot for r in log.trials(robots=["widowx"])} == {"widowx"}
    assert len(log.trials(sessions=["franka-nov3"])) == 40
    assert len(log.trials(sessions=["widowx-nov1"])) == 41
    after = log.trials(since=parse_time_bound("2026-11-02", end=False))
    assert {r.session for r in after} == {"franka-nov3"}
    through_nov1 = log.trials(until=parse_time_bound("2026-11-01", end=True))  # a bare date includes that day
    assert {r.session for r in through_nov1} == {"widowx-nov1"} and len(through_nov1) == 41
    assert log.trials(since=parse_time_bound("2026-11-04", end=False)) == []
    with pytest.raises(RemixError, match="YYYY-MM-DD"):
        parse_time_bound("yesterday", end=False)


def test_pairwise_comparison(log):
    report = build_report(log.trials())
    result = compare(report, "remix", "uniform")
    assert (result.successes_a, result.trials_a, result.successes_b, result.trials_b) == (27, 40, 15, 40)
    assert result.pooled.estimate == pytest.approx(0.3)
    reference = newcombe_difference(27, 40, 15, 40)
    assert (result.pooled.low, result.pooled.high) == pytest.approx((reference.low, reference.high))
    assert 0 < result.pooled.low < 0.3 < result.pooled.high  # 27/40 vs 15/40 is a significant difference
    by_task = {d.task: d.difference for d in result.per_task}
    assert by_task["widowx/carrot"].estimate == pytest.approx(0.3)
    assert by_task["franka/pen"].estimate == pytest.approx(0.0)
    assert by_task["franka/pen"].low < 0 < by_task["franka/pen"].high
    with pytest.raises(RemixError, match="no trials"):
        compare(report, "remix", "oracle")
    text = to_markdown(report, [result])
    assert "27/40 vs 15/40, difference +30.0 pts" in text
    # per-task differences .3 .3 0 .6: mean .3, sample sd sqrt(.18/3), s.e. sd/2
    assert result.across_tasks.mean == pytest.approx(0.3)
    assert result.across_tasks.stderr == pytest.approx(math.sqrt(0.18 / 3) / 2)
    assert "Per-task differences: mean +30.0 ± 12.2 pts (s.e. across 4 tasks)." in text


def test_single_task_has_no_stderr(tmp_path):
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        add_session(log, "s", "franka", {("pen", "remix"): outcomes(3, 7)}, day="2026-11-01", policies=("remix",))
        report = build_report(log.trials())
    summary = report.summaries[("franka", "remix")].across_tasks
    assert summary.mean == pytest.approx(0.3) and math.isnan(summary.stderr)
    assert "30.0% (1 task)" in to_markdown(report)


def test_write_report_files_and_plots(log, tmp_path):
    report = build_report(log.trials())
    written = write_report(report, tmp_path / "out", ["md", "csv", "tex"], [compare(report, "remix", "uniform")])
    names = {p.name for p in written}
    assert names == {"report.md", "cells.csv", "summary.csv", "report.tex", "success_summary.png", "success_per_task.png"}
    for path in written:
        assert path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RemixError, match="unknown report format"):
        write_report(report, tmp_path / "out", ["pdf"])
