"""Success-rate tables and plots from the trial log.

Counting rules (the same everywhere): a cell is one (robot, task, policy); its trials are the
trials scored success or failure; robot-fault trials are counted and shown but never scored, since
the policy did not get a fair try. A policy's summary on a robot is the mean of its per-task success
rates +- the standard error across tasks (the paper's Fig. 2 style); each cell also gets a Wilson 95%
interval. Two policies are compared on the tasks both ran, by the pooled difference in success rate
with Newcombe's 95% interval, and per task.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from eval.stats import Interval, MeanStdErr, mean_stderr, newcombe_difference, wilson_interval
from eval.trial_log import TrialRow
from remix.common.errors import RemixError


@dataclass(frozen=True)
class Cell:
    """Outcome counts of one policy on one task of one robot."""

    robot: str
    task: str
    policy: str
    successes: int
    failures: int
    robot_faults: int

    @property
    def trials(self) -> int:
        return self.successes + self.failures

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else math.nan

    @property
    def wilson(self) -> Interval:
        return wilson_interval(self.successes, self.trials)


@dataclass(frozen=True)
class Summary:
    """A policy on one robot: mean +- s.e. of per-task rates, and pooled counts."""

    robot: str
    policy: str
    across_tasks: MeanStdErr
    successes: int
    trials: int


@dataclass(frozen=True)
class TaskDifference:
    task: str
    difference: Interval  # rate(a) - rate(b) with Newcombe 95% interval


@dataclass(frozen=True)
class Comparison:
    """Policy a minus policy b on the (robot, task) cells both have scored trials in."""

    policy_a: str
    policy_b: str
    pooled: Interval
    successes_a: int
    trials_a: int
    successes_b: int
    trials_b: int
    per_task: tuple[TaskDifference, ...]
    across_tasks: MeanStdErr  # mean +- s.e. of the per-task differences (the paper's summary style)


@dataclass(frozen=True)
class SessionLine:
    """Provenance of one session in the selection."""

    name: str
    robot: str
    first_trial: float
    last_trial: float
    trials: int
    operators: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    robots: tuple[str, ...]
    tasks: dict[str, tuple[str, ...]]  # robot -> tasks in first-seen order
    policies: tuple[str, ...]  # first-seen order
    cells: dict[tuple[str, str, str], Cell]  # (robot, task, policy)
    summaries: dict[tuple[str, str], Summary]  # (robot, policy)
    num_trials: int
    sessions: tuple[SessionLine, ...] = ()

    def cell(self, robot: str, task: str, policy: str) -> Cell | None:
        return self.cells.get((robot, task, policy))


def build_report(rows: Sequence[TrialRow]) -> Report:
    """Aggregate trial rows into cells and per-robot policy summaries.

    Tasks and policies appear in their sessions' configured order (a blind session runs them shuffled),
    ties broken by first appearance; robots in order of first appearance.
    """
    robots: list[str] = list(dict.fromkeys(r.robot for r in rows))
    task_position: dict[tuple[str, str], int] = {}
    policy_position: dict[str, int] = {}
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    for row in rows:
        key = (row.robot, row.task)
        task_position[key] = min(task_position.get(key, row.task_position), row.task_position)
        policy_position[row.policy] = min(policy_position.get(row.policy, row.policy_position), row.policy_position)
        cell = counts.setdefault((row.robot, row.task, row.policy), {"success": 0, "failure": 0, "robot_fault": 0})
        cell[row.outcome] += 1
    policies = sorted(policy_position, key=policy_position.__getitem__)  # stable: ties keep first-seen order
    tasks = {robot: tuple(sorted((t for r, t in task_position if r == robot), key=lambda t, r=robot: task_position[(r, t)]))
             for robot in robots}
    cells = {key: Cell(*key, c["success"], c["failure"], c["robot_fault"]) for key, c in counts.items()}
    summaries = {}
    for robot in robots:
        for policy in policies:
            robot_cells = [cells[(robot, t, policy)] for t in tasks[robot] if (robot, t, policy) in cells]
            if not robot_cells:
                continue
            summaries[(robot, policy)] = Summary(
                robot, policy, mean_stderr([c.rate for c in robot_cells]),
                sum(c.successes for c in robot_cells), sum(c.trials for c in robot_cells))
    by_session: dict[str, list[TrialRow]] = {}
    for row in rows:
        by_session.setdefault(row.session, []).append(row)
    sessions = tuple(
        SessionLine(name, group[0].robot, min(r.started_at for r in group), max(r.started_at for r in group), len(group),
                    tuple(sorted({r.operator for r in group if r.operator})))
        for name, group in by_session.items())
    return Report(tuple(robots), tasks, tuple(policies), cells, summaries, len(rows), sessions)


def compare(report: Report, policy_a: str, policy_b: str) -> Comparison:
    """Difference in success rate a - b over the cells both policies have scored trials in."""
    for name in (policy_a, policy_b):
        if name not in report.policies:
            raise RemixError(f"policy {name!r} has no trials in the selection (has {list(report.policies)}); fix compare=")
    per_task, sa, na, sb, nb = [], 0, 0, 0, 0
    for robot in report.robots:
        for task in report.tasks[robot]:
            a, b = report.cell(robot, task, policy_a), report.cell(robot, task, policy_b)
            if a is None or b is None or not a.trials or not b.trials:
                continue
            label = task if len(report.robots) == 1 else f"{robot}/{task}"
            per_task.append(TaskDifference(label, newcombe_difference(a.successes, a.trials, b.successes, b.trials)))
            sa, na, sb, nb = sa + a.successes, na + a.trials, sb + b.successes, nb + b.trials
    if not per_task:
        raise RemixError(f"policies {policy_a!r} and {policy_b!r} share no task with scored trials; nothing to compare")
    return Comparison(policy_a, policy_b, newcombe_difference(sa, na, sb, nb), sa, na, sb, nb, tuple(per_task),
                      mean_stderr([d.difference.estimate for d in per_task]))


# --------------------------------------------------------------------------- filters
def parse_time_bound(text: str | None, end: bool) -> float | None:
    """'2026-11-21' or an ISO datetime (UTC unless it says otherwise) -> unix time.

    A bare date as an upper bound includes that whole day.
    """
    if text is None or str(text).strip() == "":
        return None
    text = str(text).strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RemixError(f"cannot read date {text!r}; use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if end and len(text) == 10:
        moment += timedelta(days=1)
    return moment.timestamp()


# --------------------------------------------------------------------------- formatting
def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.0f}%"


def _mean_se(summary: Summary | None, percent_sign: str = "%") -> str:
    if summary is None:
        return ""
    m = summary.across_tasks
    if math.isnan(m.mean):
        return "n/a"
    if math.isnan(m.stderr):
        return f"{100 * m.mean:.1f}{percent_sign} (1 task)"
    return f"{100 * m.mean:.1f} ± {100 * m.stderr:.1f}{percent_sign}"


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return ""
    if not cell.trials:
        text = "0/0"
    else:
        w = cell.wilson
        text = f"{cell.successes}/{cell.trials} ({_pct(cell.rate)}, {_pct(w.low)}–{_pct(w.high)})"
    return text + (f" +{cell.robot_faults} fault" + ("s" if cell.robot_faults > 1 else "") if cell.robot_faults else "")


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _diff_text(interval: Interval) -> str:
    return f"{100 * interval.estimate:+.1f} pts [{100 * interval.low:+.1f}, {100 * interval.high:+.1f}]"


def to_markdown(report: Report, comparisons: Sequence[Comparison] = ()) -> str:
    lines = []
    for robot in report.robots:
        lines.append(f"### {robot}\n")
        lines.append("| task | " + " | ".join(report.policies) + " |")
        lines.append("|---|" + "---|" * len(report.policies))
        for task in report.tasks[robot]:
            lines.append(f"| {task} | " + " | ".join(_cell_text(report.cell(robot, task, p)) for p in report.policies) + " |")
        lines.append("| **mean ± s.e. across tasks** | "
                     + " | ".join(_mean_se(report.summaries.get((robot, p))) for p in report.policies) + " |")
        lines.append("")
    lines.append("Cells: successes/scored trials (rate, Wilson 95% interval); robot-fault trials are not scored.\n")
    if report.sessions:
        lines.append("| session | robot | trials | from | to (UTC) | operators |")
        lines.append("|---|---|---|---|---|---|")
        for line in report.sessions:
            lines.append(f"| {line.name} | {line.robot} | {line.trials} | {_utc(line.first_trial)} | {_utc(line.last_trial)} | "
                         f"{', '.join(line.operators)} |")
        lines.append("")
    for c in comparisons:
        lines.append(f"### {c.policy_a} − {c.policy_b}\n")
        lines.append(f"Pooled over {len(c.per_task)} shared task(s): {c.successes_a}/{c.trials_a} vs "
                     f"{c.successes_b}/{c.trials_b}, difference {_diff_text(c.pooled)} (Newcombe 95%).")
        m = c.across_tasks
        spread = "" if math.isnan(m.stderr) else f" ± {100 * m.stderr:.1f}"
        lines.append(f"Per-task differences: mean {100 * m.mean:+.1f}{spread} pts (s.e. across {m.num_tasks} tasks).\n")
        lines.append("| task | difference [95% CI] |")
        lines.append("|---|---|")
        lines.extend(f"| {d.task} | {_diff_text(d.difference)} |" for d in c.per_task)
        lines.append("")
    return "\n".join(lines)


CELL_COLUMNS = ("robot", "task", "policy", "successes", "failures", "robot_faults", "trials", "success_rate",
                "wilson_low", "wilson_high")
SUMMARY_COLUMNS = ("robot", "policy", "num_tasks", "mean_success_rate", "stderr", "successes", "trials")


def _num(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6f}"


def cells_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CELL_COLUMNS)
    for robot in report.robots:
        for task in report.tasks[robot]:
            for policy in report.policies:
                c = report.cell(robot, task, policy)
                if c is None:
                    continue
                w = c.wilson
                writer.writerow([robot, task, policy, c.successes, c.failures, c.robot_faults, c.trials,
                                 _num(c.rate), _num(w.low), _num(w.high)])
    return out.getvalue()


def summary_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for (robot, policy), s in report.summaries.items():
        writer.writerow([robot, policy, s.across_tasks.num_tasks, _num(s.across_tasks.mean), _num(s.across_tasks.stderr),
                         s.successes, s.trials])
    return out.getvalue()


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(char, char) for char in text)


def to_latex(report: Report) -> str:
    """A booktabs table per robot: successes/trials per cell, mean +- s.e. in the last row."""
    parts = []
    for robot in report.robots:
        cols = "l" + "c" * len(report.policies)
        lines = [r"\begin{tabular}{" + cols + "}", r"\toprule",
                 f"{_tex(robot)} task & " + " & ".join(_tex(p) for p in report.policies) + r" \\", r"\midrule"]
        for task in report.tasks[robot]:
            cells = []
            for p in report.policies:
                c = report.cell(robot, task, p)
                cells.append("" if c is None else f"{c.successes}/{c.trials}")
            lines.append(f"{_tex(task)} & " + " & ".join(cells) + r" \\")
        lines.append(r"\midrule")
        means = []
        for p in report.policies:
            s = report.summaries.get((robot, p))
            if s is None or math.isnan(s.across_tasks.mean):
                means.append("")
            elif math.isnan(s.across_tasks.stderr):
                means.append(f"{100 * s.across_tasks.mean:.1f}\\%")
            else:
                means.append(f"${100 * s.across_tasks.mean:.1f} \\pm {100 * s.across_tasks.stderr:.1f}$\\%")
        lines += [r"Mean $\pm$ s.e. & " + " & ".join(means) + r" \\", r"\bottomrule", r"\end{tabular}"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------- plots
def plot_summary(report: Report, path: Path) -> Path:
    """Fig. 2 style: one panel per robot, a bar per policy at its mean success rate, s.e. error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(report.robots), figsize=(1.0 + 1.3 * len(report.policies) * len(report.robots), 3.4),
                             squeeze=False, sharey=True)
    for ax, robot in zip(axes[0], report.robots):
        xs, heights, errors, bar_colors, names = [], [], [], [], []
        for i, policy in enumerate(report.policies):
            s = report.summaries.get((robot, policy))
            if s is None or math.isnan(s.across_tasks.mean):
                continue
            xs.append(len(xs))
            heights.append(100 * s.across_tasks.mean)
            errors.append(0.0 if math.isnan(s.across_tasks.stderr) else 100 * s.across_tasks.stderr)
            bar_colors.append(colors[i % len(colors)])
            names.append(policy)
        ax.bar(xs, heights, yerr=errors, color=bar_colors, capsize=4, edgecolor="black", linewidth=0.5)
        ax.set_xticks(xs, names, rotation=20, ha="right")
        ntasks = len(report.tasks[robot])
        ax.set_title(f"{robot} ({ntasks} task{'s' if ntasks != 1 else ''})")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("success rate (%)\nmean ± s.e. across tasks")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def plot_per_task(report: Report, path: Path) -> Path:
    """Grouped bars per task (one per policy) with Wilson 95% error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [(r, t) for r in report.robots for t in report.tasks[r]]
    n_pol = len(report.policies)
    width = 0.8 / max(n_pol, 1)
    fig, ax = plt.subplots(figsize=(1.5 + 0.5 * n_pol * len(labels), 3.6))
    for i, policy in enumerate(report.policies):
        xs, heights, lows, highs = [], [], [], []
        for j, (robot, task) in enumerate(labels):
            c = report.cell(robot, task, policy)
            if c is None or not c.trials:
                continue
            w = c.wilson
            xs.append(j - 0.4 + width * (i + 0.5))
            heights.append(100 * c.rate)
            lows.append(100 * (c.rate - w.low))
            highs.append(100 * (w.high - c.rate))
        ax.bar(xs, heights, width, yerr=[lows, highs], capsize=3, label=policy, edgecolor="black", linewidth=0.5)
    ax.set_xticks(range(len(labels)), [t if len(report.robots) == 1 else f"{r}\n{t}" for r, t in labels])
    ax.set_ylim(0, 100)
    ax.set_ylabel("success rate (%)\nWilson 95% interval")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=max(n_pol, 1), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def write_report(report: Report, out_dir: Path, formats: Sequence[str], comparisons: Sequence[Comparison] = (),
                 plot: bool = True) -> list[Path]:
    """Write the requested formats (md, csv, tex) and the plots into `out_dir`; returns the files."""
    unknown = sorted(set(formats) - {"md", "csv", "tex"})
    if unknown:
        raise RemixError(f"unknown report format(s) {unknown}; use any of md, csv, tex")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if "md" in formats:
        written.append(out_dir / "report.md")
        written[-1].write_text(to_markdown(report, comparisons))
    if "csv" in formats:
        written += [out_dir / "cells.csv", out_dir / "summary.csv"]
        written[-2].write_text(cells_csv(report))
        written[-1].write_text(summary_csv(report))
    if "tex" in formats:
        written.append(out_dir / "report.tex")
        written[-1].write_text(to_latex(report))
    if plot:
        written.append(plot_summary(report, out_dir / "success_summary.png"))
        written.append(plot_per_task(report, out_dir / "success_per_task.png"))
    return written
