"""`ivr kb check`, `ivr kb search` and `ivr kb evaluate` through the typer app, on the fixture and the shipped KB."""
from __future__ import annotations

import re
from pathlib import Path

import typer
from kbfiles import FIXTURE, edit, fixture_copy
from typer.testing import CliRunner

from ivr.commands import context
from ivr.commands.kb import app as kb_app

REPO = Path(__file__).resolve().parents[3]
QUESTIONS = Path(__file__).parent / "fixture_questions.tsv"


def run(*args: str) -> tuple[int, str]:
    root = typer.Typer()

    @root.callback()
    def _main() -> None:
        context.configure(None, {}, 0)

    root.add_typer(kb_app, name="kb")
    result = CliRunner().invoke(root, ["kb", *args], env={})
    return result.exit_code, result.output


def test_check_prints_warnings_and_a_summary() -> None:
    code, out = run("check", str(FIXTURE), "--today", "2026-12-06")
    assert code == 0, out
    assert out.splitlines() == [
        f"warning: {FIXTURE}/heating.yaml: ht_fee: unverified: not spoken until a supervisor marks it checked",
        f"warning: {FIXTURE}/social_insurance.yaml: ss_pension_claim: expires on 2026-12-31, in 25 days",
        f"{FIXTURE}: ok (6 entries, 5 spoken on 2026-12-06, 2 warnings)",
    ]


def test_check_fails_on_an_error(tmp_path: Path) -> None:
    kb = fixture_copy(tmp_path)
    edit(kb / "heating.yaml", "    text: |-\n      法定供暖期", "    text: |-\n      " + "长" * 10 + "\n    x: 1\n    y: |-\n      法定供暖期")
    code, out = run("check", str(kb), "--today", "2026-12-06")
    assert code == 1
    assert f"error: {kb}/heating.yaml: ht_season: unknown field `x`" in out.splitlines()
    assert out.splitlines()[-1] == f"{kb}: 2 errors, 2 warnings"


def test_check_reads_the_kb_dir_setting(tmp_path: Path) -> None:
    root = typer.Typer()

    @root.callback()
    def _main() -> None:
        context.configure(None, {}, 0)

    root.add_typer(kb_app, name="kb")
    result = CliRunner().invoke(root, ["kb", "check"], env={"IVR_KB_DIR": str(tmp_path / "none")})
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"error: {tmp_path}/none: knowledge base folder not found",
                                          f"{tmp_path}/none: 1 error, 0 warnings"]


def test_search_lists_entries_with_score_and_whether_spoken() -> None:
    code, out = run("search", "设保卡丢了怎么补办", "--dir", str(FIXTURE), "-n", "2")
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == 2
    score, entry_id, title, flag = lines[0].split()
    assert (entry_id, title, flag) == ("ss_card_lost", "社保卡丢失挂失和补办", "[spoken]")
    assert float(score) >= 0.8 > float(lines[1].split()[0])
    assert run("search", "。", "--dir", str(FIXTURE)) == (0, "no entry found\n")


def test_evaluate_prints_the_figures_and_refuses_a_bad_set(tmp_path: Path) -> None:
    code, out = run("evaluate", str(QUESTIONS), "--dir", str(FIXTURE), "--today", "2026-12-06")
    assert code == 0, out
    assert "top-1: 100.0%   top-3: 100.0%" in out and "  wrong answer spoken: 0/8 (0.0%)" in out
    bad = tmp_path / "bad.tsv"
    bad.write_text("question\texpected\n暖气不热\tht_nope\n", encoding="utf-8")
    code, out = run("evaluate", str(bad), "--dir", str(FIXTURE))
    assert (code, out) == (1, f"ivr: {bad}:2: 'ht_nope' is not an entry of the knowledge base\n")
    code, out = run("evaluate", str(QUESTIONS), "--dir", str(tmp_path))
    assert (code, out) == (1, f"ivr: {tmp_path}: no knowledge base files (*.yaml)\n")


def test_evaluate_floor_fails_below_it(tmp_path: Path) -> None:
    assert run("evaluate", str(QUESTIONS), "--dir", str(FIXTURE), "--min-top3", "1.0")[0] == 0
    relabelled = tmp_path / "set.tsv"  # every answerable question labelled with one entry: 1 of 6 right
    relabelled.write_text(re.sub(r"\t(?!expected$)[a-z_]+$", "\tss_pension_claim", QUESTIONS.read_text(encoding="utf-8"),
                                 flags=re.M), encoding="utf-8")
    code, out = run("evaluate", str(relabelled), "--dir", str(FIXTURE), "--min-top3", "0.9")
    assert code == 1
    assert "top-1: 16.7%" in out
    assert re.fullmatch(r"ivr: top-3 \d+\.\d% is below the floor 90\.0%", out.splitlines()[-1])


def test_the_shipped_knowledge_base_checks_and_its_evaluation_set_clears_the_floor() -> None:
    """CI's run on the shipped set: the figures are printed; the floor only catches a broken index."""
    code, out = run("check", str(REPO / "kb"))
    assert code == 0, out
    code, out = run("evaluate", str(REPO / "kb" / "eval" / "questions.tsv"), "--dir", str(REPO / "kb"),
                    "--min-top3", "0.5")
    print(out)
    assert code == 0, out
