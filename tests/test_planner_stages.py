"""The run planner for the evaluation stages (:func:`nextads_lib.planner.plan_judge`, ``plan_verify``,
``plan_video_quality``) against real judge runs on the tests' local OpenAI and Gemini wire-format servers: the
judge plan's calls and tokens are those the run then sends; ``max_cost_usd`` stops a judge run and a verify
run before their first call, with nothing written."""

from __future__ import annotations

import shutil

import pytest

from nextads_lib import executor, judge, planner, reflector
from nextads_lib.backends import get_backend
from nextads_lib.backends.pricing import cost_usd
from nextads_lib.compliance.model_checks import PROMPTS as COMPLIANCE_PROMPTS

from fakeapi.model_routes import ModelServer, Reply
from test_judge import make_study

RUN = "nextads__offline__compositor"
TOKENS_IN, TOKENS_OUT = 1000, 200  # the local server's usage for every answer (OpenAI and Gemini alike)


@pytest.fixture
def server(monkeypatch):
    pytest.importorskip("openai")
    pytest.importorskip("google.genai")
    for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(k, raising=False)
    s = ModelServer(default=Reply('{"score": 8, "rationale": "warm palette like the covers"}'))
    yield s
    s.close()


def _backend(spec: str, server: ModelServer, paths):
    url = server.openai_url if spec.startswith("openai") else server.base
    return get_backend(spec, cache_dir=paths.cache, base_url=url, api_key="k", backoff_s=0.01)


def _two_runs(tmp_path):
    """make_study's run (u1: two creatives, u2: one and a failed pair) and a copy of it under a second name."""
    paths = make_study(tmp_path / "data")
    shutil.copytree(paths.run_dir("pcg", RUN), paths.run_dir("pcg", RUN + "__copy"))
    return paths


# gpt-4o-mini and gemini-2.5-flash: paid models whose tokens-per-minute windows let 20 judge requests through at
# once (gpt-4o's 30k would hold the run for minutes)
@pytest.mark.parametrize("spec", ["openai:gpt-4o-mini", "gemini:gemini-2.5-flash"])
def test_the_judge_plan_matches_the_run_in_calls_and_tokens(tmp_path, server, spec):
    paths = _two_runs(tmp_path)
    b = _backend(spec, server, paths)
    cold = planner.plan_judge(paths, "pcg", b)
    # per run: u1 2 creatives x 3 criteria + its diversity, u2 1 creative x 3 (one creative: no diversity)
    assert (cold.runs, cold.items, cold.items_todo, cold.model_calls, cold.cached_calls) == (2, 8, 6, 20, 0)
    assert cold.calls_by_task == {"judge.diversity": 2, "judge.personalization_content": 6,
                                  "judge.personalization_presentation": 6, "judge.product_alignment": 6}
    assert "request size" in cold.sources["tokens"] and "measured" not in cold.sources["tokens"]
    assert server.log == []  # planning sends nothing

    judge.judge_all(paths, "pcg", b, n_frames=8, workers=1, runs=[RUN])
    assert len(server.log) == 10
    plan = planner.plan_judge(paths, "pcg", b)
    assert (plan.model_calls, plan.cached_calls, plan.items_todo) == (10, 10, 3)
    assert "measured" in plan.sources["tokens"] and "request size" not in plan.sources["tokens"]
    n0, u0 = len(server.log), len(b.usage)
    out = judge.judge_all(paths, "pcg", b, n_frames=8, workers=1)
    assert out["pcg"].score.notna().sum() == 20
    assert plan.model_calls == len(server.log) - n0 == 10
    spent = [u for u in b.usage[u0:] if not u.cached]
    assert len(spent) == plan.model_calls
    assert (plan.input_tokens, plan.output_tokens) == (sum(u.input_tokens for u in spent),
                                                       sum(u.output_tokens for u in spent)) == (10 * TOKENS_IN,
                                                                                                10 * TOKENS_OUT)
    assert plan.cost_usd == pytest.approx(sum(u.cost_usd for u in spent)) == pytest.approx(
        cost_usd(spec, 10 * TOKENS_IN, 10 * TOKENS_OUT))
    assert plan.cost_usd > 0 and plan.cost_by_backend == {spec: plan.cost_usd}
    table = planner.stage_vs_spent(plan, b.usage[u0:]).set_index("quantity")
    assert table.loc["model_calls", "estimate"] == table.loc["model_calls", "spent"] == 10
    assert planner.plan_judge(paths, "pcg", b).model_calls == 0  # everything is cached now
    assert "judge pcg: 0 of 8 creatives to do" in planner.format_plan(planner.plan_judge(paths, "pcg", b))


def test_max_cost_stops_a_judge_run_before_its_first_call(tmp_path, server):
    paths = _two_runs(tmp_path)
    b = _backend("openai:gpt-4o-mini", server, paths)
    plan = planner.plan_judge(paths, "pcg", b)
    limit = round(plan.cost_usd / 2, 4)
    assert limit > 0
    with pytest.raises(executor.BudgetExceeded, match=rf"max_cost_usd={limit:.4f} USD.*the judge stage \(pcg\) "
                                                      rf"estimates {plan.cost_usd:.4f} USD.*nothing was started"):
        planner.check_budget(plan, limit)
    with pytest.raises(executor.BudgetExceeded, match="the judge stage"):
        judge.judge_all(paths, "pcg", b, workers=1, max_cost_usd=limit)
    assert server.log == [] and not (paths.results / "judge_pcg.parquet").exists()
    planner.check_budget(plan, 0.0)  # 0: no limit
    planner.check_budget(plan, plan.cost_usd)  # exactly the estimate is within the budget
    judge.judge_all(paths, "pcg", b, workers=1, max_cost_usd=plan.cost_usd + 1e-6)
    assert len(server.log) == 20 and (paths.results / "judge_pcg.parquet").is_file()


def test_max_cost_stops_a_verify_run_before_its_first_call(tmp_path, server, monkeypatch):
    paths = make_study(tmp_path / "data")
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-local")
    kw = dict(verifier_backend="openai:gpt-4o", reflector_backend="openai:gpt-4o", max_rounds=2)
    plan = planner.plan_verify(paths, "pcg", runs=[RUN], **kw)
    # 3 creatives; round 0: 3 judge criteria + one model compliance prompt per check; each of 2 revision
    # rounds (an upper bound): the Reflector and round 0's requests again
    first = 3 + len(COMPLIANCE_PROMPTS)
    assert (plan.items, plan.items_todo) == (3, 3)
    assert plan.model_calls == 3 * (first + 2 * (1 + first))
    assert plan.calls_by_task["reflector.directives"] == 6 and plan.calls_by_task["judge.product_alignment"] == 9
    assert "revised 2 time(s)" in plan.bound and plan.cost_usd > 0
    assert "upper bound" in planner.format_plan(plan)
    with pytest.raises(executor.BudgetExceeded, match=r"max_cost_usd=0\.0010 USD.*the verify stage \(pcg\) "
                                                      rf"estimates {plan.cost_usd:.4f} USD"):
        reflector.verify_and_reflect(paths, "pcg", RUN, progress=False, max_cost_usd=0.001, **kw)
    assert server.log == []
    assert not list(paths.run_dir("pcg", RUN).glob("*/verify")) and not (paths.results / "verify_pcg.parquet").exists()
    # offline backends cost nothing: the same budget lets the run through
    free = planner.plan_verify(paths, "pcg", runs=[RUN])
    assert free.model_calls == 3 * (3 + 2 * (1 + 3)) and (free.input_tokens, free.cost_usd) == (0, 0) and "offline" in free.sources
    df = reflector.verify_and_reflect(paths, "pcg", RUN, progress=False, max_cost_usd=0.001, max_rounds=0)
    assert len(df) == 3 and server.log == []
    assert planner.plan_verify(paths, "pcg", runs=[RUN], max_rounds=0).items_todo == 0  # cached


def test_video_quality_plan_is_free_and_counts_the_creatives(tmp_path):
    paths = make_study(tmp_path / "data")
    plan = planner.plan_video_quality(paths, "pcg,pci")
    assert (plan.stage, plan.runs, plan.items, plan.items_todo, plan.model_calls, plan.cost_usd) == (
        "video_quality", 1, 4, 3, 0, 0.0)
    planner.check_budget(plan, 0.001)
    assert "plan video_quality pcg,pci: 3 of 4 creatives to do" in planner.format_plan(plan)


def test_the_study_runner_passes_the_budget_to_the_evaluation_notebooks(monkeypatch, tmp_path):
    import nbformat
    import papermill

    from nextads_lib import study

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setenv("NEXTADS_ROOT", str(tmp_path))
    names = ["00_build_product_library.ipynb", "10_run_pcg.ipynb", "12_verify_and_reflect.ipynb",
             "20_evaluate_judge.ipynb", "21_evaluate_video_quality.ipynb"]
    for n in names:
        nbformat.write(nbformat.v4.new_notebook(), tmp_path / "notebooks" / n)
    monkeypatch.setattr(study, "steps_for", lambda profile: [study.Step(n) for n in names])
    got: dict[str, dict] = {}
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda src, out, parameters, **kw: got.setdefault(src.rsplit("/", 1)[-1], parameters))
    study.run("p", "data", executor="ray", ray_address="auto", max_cost_usd=2.5, jobs=1)
    assert got["00_build_product_library.ipynb"] == {"data_dir": "data"}
    for n in names[1:]:
        assert got[n] == {"data_dir": "data", "executor": "ray", "ray_address": "auto", "max_cost_usd": 2.5}, n
