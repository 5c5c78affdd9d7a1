"""The run planner (:mod:`nextads_lib.planner`) against real runs on the tests' local OpenAI wire-format
server: its calls, tokens and cost for a paid backend match what the run then does; ``max_cost_usd`` stops a
run before it passes its budget, with every finished pair kept; the setup check names what is missing."""

from __future__ import annotations

import json

import pytest

from nextads_lib import executor, pcg, planner
from nextads_lib.store import read_json

from test_pcg import TINY, ChatServer, canned, make_bench  # noqa: E402

BACKEND = "openai:gpt-4o"  # in the price table: 2.50 / 10.00 USD per 1M tokens
CALL_USD = 100 / 1e6 * 2.50 + 20 / 1e6 * 10.00  # the server answers every call with 100 input, 20 output tokens


def every_product_matches(body):
    """The canned Director, with every product compatible: no pair falls back, so no storyboard is shared."""
    out = canned(body)
    if "candidates" in out:
        out = {**out, "candidates": [{**c, "score": 0.9} for c in out["candidates"]]}
    return out


@pytest.fixture()
def server(monkeypatch):
    s = ChatServer(every_product_matches)
    monkeypatch.setenv("OPENAI_BASE_URL", s.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-local")
    yield s
    s.close()


def new_calls(server, n0):
    return len(server.log) - n0


def test_the_plan_matches_the_run_in_calls_tokens_and_cost(tmp_path, server):
    paths = make_bench(tmp_path / "data")
    cold = planner.plan_run(paths, "pcg", "nextads", BACKEND, "compositor", duration_s=TINY["duration_s"])
    assert cold.pairs_todo == 4 and cold.model_calls == 2 + 4 + 4  # 2 profiles, 4 matches, 4 storyboards
    assert cold.sources["tokens"].count("default") == 3

    s1 = pcg.run_pcg(paths, "nextads", BACKEND, "compositor", limit_users=1, workers=1, progress=False, **TINY)
    assert s1.failed == 0 and s1.fallback == 0 and len(server.log) == 5

    plan = planner.plan_run(paths, "pcg", "nextads", BACKEND, "compositor", duration_s=TINY["duration_s"])
    assert plan.pairs == 4 and plan.pairs_todo == 2 and plan.todo_pair_ids == ["u_gamer__brewco-beans",
                                                                              "u_gamer__edge-razor"]
    assert plan.sources["tokens"].count("measured") == 3  # the first user's calls, read back from the cache
    n0 = len(server.log)
    s = pcg.run_pcg(paths, "nextads", BACKEND, "compositor", workers=1, progress=False, **TINY)
    assert s.failed == 0 and s.fallback == 0
    assert plan.model_calls == new_calls(server, n0) == 5
    got = planner.spent(paths, plan)
    assert (plan.input_tokens, plan.output_tokens) == (got["input_tokens"], got["output_tokens"]) == (500, 100)
    assert plan.cost_usd == pytest.approx(got["cost_usd"]) == pytest.approx(5 * CALL_USD)
    assert plan.video_seconds == got["video_seconds"] == 2 * TINY["duration_s"]
    table = planner.estimate_vs_spent(plan, paths).set_index("quantity")
    assert table.loc["model_calls", "estimate"] == table.loc["model_calls", "spent"] == 5
    assert planner.plan_run(paths, "pcg", "nextads", BACKEND, "compositor").pairs_todo == 0  # all done now


def test_max_cost_stops_the_run_before_it_passes_the_budget_and_keeps_finished_pairs(tmp_path, server):
    paths = make_bench(tmp_path / "data")
    plan = planner.plan_run(paths, "pcg", "nextads", BACKEND, "compositor", duration_s=TINY["duration_s"])
    with pytest.raises(executor.BudgetExceeded, match="max_cost_usd=0.0010.*nothing was started"):
        planner.check_budget(plan, 0.001)  # the default token sizes put this plan far above 0.001 USD
    assert server.log == []

    # one user's job costs 5 calls; a budget of 1.5 jobs lets the first finish and stops before the second
    with pytest.raises(executor.BudgetExceeded, match="1 user job"):
        with executor.use("local", max_cost_usd=7.5 * CALL_USD):
            pcg.run_pcg(paths, "nextads", BACKEND, "compositor", workers=1, progress=False, **TINY)
    assert len(server.log) == 5
    run_dir = paths.run_dir("pcg", plan.run_name)
    assert sorted(p.parent.name for p in run_dir.glob("*/manifest.json")) == ["u_coffee__brewco-beans",
                                                                              "u_coffee__edge-razor"]
    # a larger budget does only the rest
    with executor.use("local", max_cost_usd=1.0):
        s = pcg.run_pcg(paths, "nextads", BACKEND, "compositor", workers=1, progress=False, **TINY)
    assert s.failed == 0 and len(server.log) == 10
    stats = read_json(run_dir / "stats.json")
    assert (stats["pairs_executed"], stats["pairs_reused"]) == (2, 2)


def test_setup_check_names_every_problem_in_one_error(tmp_path, monkeypatch, server):
    assert planner.check_setup(BACKEND, "compositor")[0].startswith(f"{BACKEND}: key set, server http://127.0.0.1")
    for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(planner.SetupError) as e:
        planner.check_setup("openai:gpt-4o", "gemini:gemini-2.5-flash", f"hf:{tmp_path}/none",
                            f"wan:{tmp_path}", "bogus:x", "offline")
    msg = str(e.value)
    assert "openai:gpt-4o: set OPENAI_API_KEY" in msg and "gemini:gemini-2.5-flash: set GEMINI_API_KEY" in msg
    assert "none does not exist" in msg and "no model_index.json" in msg and "unknown backend 'bogus:x'" in msg
    assert msg.count("\n") == 5 and not any(line.strip().startswith("offline") for line in msg.splitlines())
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens on port 9
    with pytest.raises(planner.SetupError, match="cannot reach http://127.0.0.1:9/v1"):
        planner.check_setup("openai:gpt-4o")
    assert planner.check_setup("offline", "compositor") == ["offline: runs here, no key",
                                                            "compositor: runs here, no key"]


def test_plan_cli_prints_the_plan_and_fails_on_setup(tmp_path, monkeypatch, capsys):
    paths = make_bench(tmp_path / "data")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    from nextads_lib import study

    rc = study.main(["plan", "--data-dir", str(paths.root), "--task", "pcg", "--system", "generic",
                     "--director-backend", BACKEND, "--pairs", "500", "--api-concurrency", "8", "--json"])
    out = capsys.readouterr()
    assert rc == 2 and "set OPENAI_API_KEY" in out.err
    plan = json.loads(out.out)
    assert plan["pairs"] == 500 and plan["model_calls"] == 250  # one storyboard per product, 2 products per 4 pairs
    assert plan["wall_s"] > 0 and plan["bound_by"] in plan["seconds_by_resource"]
