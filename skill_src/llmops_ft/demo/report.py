"""demo/report.md: the goals (met or plainly missed), the stages, base vs tuned on both sets, the fields the tuned
model gets wrong, the loss curve, the GGUF quants side by side and what `ollama run` answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import atomic_write_bytes, atomic_write_text

GOALS = {"exact_call_eval_min": 0.80, "exact_action_eval_min": 0.95, "exact_call_heldout_min": 0.80,
         "base_action_max": 0.10, "total_minutes_max": 6.0}
METRICS = [("valid JSON", "valid_json_rate"), ("schema-valid call", "schema_valid_rate"),
           ("exact action", "action_accuracy"), ("exact call", "exact_match_rate"), ("field F1", "field_f1")]


def goals(state: dict[str, Any], timings: list[dict[str, Any]], total: float, n_stages: int) -> list[tuple]:
    """(goal, measured, met) rows for every goal whose figure this run measured."""
    rows = []
    ev = state.get("evaluate", {})
    if "eval" in ev:
        tuned, base = ev["eval"]["models"]["tuned"]["scores"], ev["eval"]["models"]["base"]["scores"]
        rows += [_at_least("tuned exact call on the eval set", tuned["exact_match_rate"], "exact_call_eval_min"),
                 _at_least("tuned exact action on the eval set", tuned["action_accuracy"], "exact_action_eval_min"),
                 (f"base exact action on the eval set <= {GOALS['base_action_max']:.0%}",
                  f"{base['action_accuracy']:.1%}", base["action_accuracy"] <= GOALS["base_action_max"])]
    if "held-out" in ev:
        tuned = ev["held-out"]["models"]["tuned"]["scores"]
        rows.append(_at_least("tuned exact call on the held-out set", tuned["exact_match_rate"],
                              "exact_call_heldout_min"))
    if state.get("ollama"):
        o = state["ollama"]
        rows.append(("`ollama run`'s prompt gives the training prompt's exact-call rate (held-out set)",
                     f"{o['ollama']['exact_match_rate']:.1%} vs {o['trained']['exact_match_rate']:.1%}",
                     o["ollama"]["exact_match_rate"] == o["trained"]["exact_match_rate"]))
    rows.append((f"whole demo <= {GOALS['total_minutes_max']:.0f} minutes", f"{total / 60:.1f} min",
                 total / 60 <= GOALS["total_minutes_max"]))
    ran = sum(t["ok"] for t in timings)
    rows.append(("every stage ran", f"{ran}/{n_stages}", ran == n_stages))
    return rows


def _at_least(label: str, value: float, key: str) -> tuple[str, str, bool]:
    return f"{label} >= {GOALS[key]:.0%}", f"{value:.1%}", value >= GOALS[key]


def write_report(state: dict[str, Any], timings: list[dict[str, Any]], total: float, *, n_stages: int
                 ) -> dict[str, Any]:
    """Write report.md and loss.png into the demo folder; return the demo's result dict."""
    out: Path = state["out"]
    rows = goals(state, timings, total, n_stages)
    lines = ["# Demo report: the Task API Assistant", "",
             "SmolLM2-135M-Instruct (embedded), LoRA on CPU, from `make demo`. Every number below was measured in "
             "this run.", "", "## Goals", ""]
    missed = [g for g, _, met in rows if not met]
    lines.append(f"**Missed: {len(missed)} of {len(rows)} goals** ({'; '.join(missed)}).\n" if missed
                 else f"All {len(rows)} goals met.\n")
    lines += ["| goal | measured | met |", "| --- | --- | --- |"]
    lines += [f"| {g} | {m} | {'yes' if met else '**NO**'} |" for g, m, met in rows]
    lines += ["", "## Stages", "", "| stage | seconds | result |", "| --- | --- | --- |"]
    lines += [f"| {t['stage']} | {t['seconds']:.1f} | {'' if t['ok'] else '**FAILED**: '}{t['detail']} |"
              for t in timings]
    lines += _scores_section(state) + _loss_section(state) + _quant_section(state) + _ollama_section(state)
    lines += _exports_section(state, out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    loss_png = Path(state["train"]["output_dir"]) / "loss.png" if state.get("train") else None
    if loss_png and loss_png.is_file():
        atomic_write_bytes(out / "loss.png", loss_png.read_bytes())
    summary = "\n".join([f"{t['stage']:<28} {t['seconds']:>7.1f}s  {'ok' if t['ok'] else 'FAILED'}  {t['detail']}"
                         for t in timings] + [f"{'MET ' if met else 'MISSED'}  {g}: {m}" for g, m, met in rows]
                        + [f"report: {out.name}/report.md"])
    ok = all(t["ok"] for t in timings) and len(timings) == n_stages
    return {"ok": ok, "stages": timings, "goals": [{"goal": g, "measured": m, "met": met} for g, m, met in rows],
            "total_seconds": round(total, 1), "summary": summary,
            "scores": {name: {role: r["models"][role]["scores"] for role in ("base", "tuned")}
                       for name, r in state.get("evaluate", {}).items()}}


def _scores_section(state: dict[str, Any]) -> list[str]:
    ev = state.get("evaluate", {})
    if not ev:
        return []
    files = state["eval_files"]
    names = [n for n in files if n in ev]
    lines = ["", "## Base vs tuned on both sets", "",
             "Greedy decoding. " + "; ".join(f"{n}: {ev[n]['n']} rows of examples/task_api/{files[n]}"
                                              for n in names)
             + ". The held-out set is written by hand and never used for training or tuning the recipe.", "",
             "| metric | " + " | ".join(f"{n} base | {n} tuned" for n in names) + " |",
             "| --- |" + " --- | --- |" * len(names)]
    for label, key in METRICS:
        cells = [f"{ev[n]['models'][r]['scores'][key]:.1%}" for n in names for r in ("base", "tuned")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "### Fields the tuned model gets wrong", "",
              "Answers with that field wrong, missing or extra (a wrong action counts under `action`).", "",
              "| field | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    errors = {n: ev[n]["models"]["tuned"]["scores"]["field_errors"] for n in names}
    fields = sorted({f for e in errors.values() for f in e}, key=lambda f: (-sum(e.get(f, 0) for e in
                                                                                 errors.values()), f))
    lines += [f"| `{f}` | " + " | ".join(str(errors[n].get(f, 0)) for n in names) + " |" for f in fields]
    if not fields:
        lines.append("| (none) |" + " 0 |" * len(names))
    return lines


def _loss_section(state: dict[str, Any]) -> list[str]:
    summary = state.get("train")
    if not summary:
        return []
    return ["", "## Training", "",
            f"{summary.get('steps')} steps on the {summary.get('backend')} backend; training loss "
            f"{summary['first_loss']:.3f} -> {summary['final_loss']:.3f} (means of the first and last 3 logged "
            "steps). loss.png shows the training loss, the eval loss on the val split (points) and the learning "
            "rate.", "", "![loss](loss.png)"]


def _quant_section(state: dict[str, Any]) -> list[str]:
    quants = state.get("quants")
    if not quants:
        return []
    lines = ["", "## GGUF quants side by side (llama.cpp vs the trained model in Python)", "",
             "Measured token by token on the held-out set: KL divergence of the next-token distributions, the share "
             "of positions whose top token agrees, identical greedy answers, and the task's scores in llama.cpp "
             "against Python. Each quant's bounds are ours, recorded in recommendations.yaml.", "", quants["table"],
             ""]
    lines += [f"- {line}" for line in quants["lines"]]
    lines.append(f"- The rule (the smallest quant within its bounds) picks **{quants['choice']}**: the Modelfile "
                 f"points at `{quants['modelfile_file']}`.")
    return lines


def _ollama_section(state: dict[str, Any]) -> list[str]:
    o = state.get("ollama")
    if not o:
        return []
    return ["", "## What `ollama run` answers", "",
            "Each held-out request sent as `ollama run` sends it (no system message: Ollama adds the Modelfile's "
            "SYSTEM, and its TEMPLATE fills in the date of the request through `currentDate`), rendered by our "
            "renderer of Ollama's template semantics (the tests check it against Go's text/template) and answered "
            "by the chosen GGUF in llama.cpp.", "",
            f"- prompt token-identical to the training prompt: {o['same_prompt']}/{o['n']} rows",
            f"- answer identical: {o['same_answer']}/{o['n']} rows",
            f"- exact call: {o['ollama']['exact_match_rate']:.1%} through `ollama run`'s prompt, "
            f"{o['trained']['exact_match_rate']:.1%} with the training prompt"]


def _exports_section(state: dict[str, Any], out: Path) -> list[str]:
    exports = state.get("exports")
    if not exports:
        return []
    lines = ["", "## Exports", "", "| kind | files | size |", "| --- | --- | --- |"]
    lines += [f"| {k} | {', '.join(s['files'])} | {s.get('bytes', 0) / 2**20:.1f} MiB |" for k, s in exports.items()]
    ollama = (exports.get("gguf") or {}).get("ollama")
    if ollama:  # relative to the report: the report names no machine's paths
        modelfile = Path(ollama["modelfile"]).resolve().relative_to(out.resolve())
        command = f"ollama create {state['model_name']} -f {modelfile}"
        lines += ["", f"Run it in Ollama, from this report's folder: `{command}`"]
    return lines
