"""The cost and engines answers as plain records and text, for the CLI and the UI.

`cost_report(model, size_hw, settings)` -> a JSON-ready dict: the plan's counts, the cost of the
image as the preset processes it, the three ways, and the engines' rows. Errors are reported
in the record ("error"), never raised. Pure (no gradio / torch).
"""
from __future__ import annotations

from typing import Any

from .cost import Way, cost_record, human, image_cost, ratio, three_ways
from .engine import plan_image, resolve_preset
from .engines import ROW_HEADERS, engine_rows, row_cells, row_record
from .geometry import Size
from .overrides import collect_overrides


def cost_report(model: str, size_hw: Size, settings: dict[str, Any] | None = None,
                prompt_tokens: int = 0, engines: bool = True) -> dict[str, Any]:
    rec: dict[str, Any] = {"model": model, "width": size_hw.width, "height": size_hw.height}
    try:
        if prompt_tokens < 0:
            raise ValueError(f"prompt tokens must be 0 or more, got {prompt_tokens}")
        base = resolve_preset(model)
        preset = base.with_overrides(**collect_overrides(base, **(settings or {})))
        plan = plan_image(size_hw, preset)
    except ValueError as exc:
        rec["error"] = str(exc)
        return rec
    rec["model"] = preset.repo_id
    rec["cost"] = cost_record(image_cost(plan, prompt_tokens))
    rec["three_ways"] = [way_record(w) for w in three_ways(plan, prompt_tokens)]
    if engines:
        rec["engines"] = [row_record(r) for r in engine_rows(size_hw, preset)]
    return rec


def way_record(way: Way) -> dict[str, Any]:
    c = way.cost
    return {"way": way.name, "how": way.how, "views_hw": [list(v.hw) for v in way.views],
            "num_tokens": c.num_tokens, "vision_flops": c.vision_flops,
            "llm_prefill_flops": c.llm_flops, "total_flops": c.total_flops, "kv_bytes_bf16": c.kv_bytes}


WAY_HEADERS = ["way", "views", "tokens", "vision FLOPs", "LLM prefill FLOPs", "KV cache (bf16)",
               "vs preset (FLOPs)"]


def way_rows(ways: list[dict[str, Any]]) -> list[list[Any]]:
    first = ways[0]["total_flops"] if ways else None
    return [[w["way"], w["how"], f"{w['num_tokens']:,}", human(w["vision_flops"], "FLOP"),
             human(w["llm_prefill_flops"], "FLOP"), human(w["kv_bytes_bf16"], "B"),
             ratio(w["total_flops"], first)] for w in ways]


COST_HEADERS = ["part", "value", "how"]


def cost_rows(c: dict[str, Any]) -> list[list[Any]]:
    """The headline table of one image's cost."""
    vt, lt = c["vision_flops_by_term"] or {}, c["llm_flops_by_term"] or {}
    crops = c["crops"] or []
    per_crop = (", ".join(sorted({f"{k['size_hw'][1]}x{k['size_hw'][0]}: {human(k['flops'], 'FLOP')}"
                                  for k in crops})) if crops else "—")
    share = c["context_share"]
    return [
        ["vision encoder", human(c["vision_flops"], "FLOP"),
         f"{len(crops)} crop(s); per crop {per_crop}" if crops else "unavailable"],
        ["  patch embedding", human(vt.get("patch_embed"), "FLOP"), "2·patches·3·T·p²·width"],
        ["  attention projections", human(vt.get("attn_proj"), "FLOP"), "8·N·width² per layer"],
        ["  attention scores (quadratic)", human(vt.get("attn_scores"), "FLOP"), "4·N²·width per layer"],
        ["  MLP", human(vt.get("mlp"), "FLOP"), "4·N·width·mlp (6· when gated) per layer"],
        ["  merger / projector", human(vt.get("projector"), "FLOP"), "2·rows·Σ in·out"],
        ["LLM prefill (image tokens)", human(c["llm_prefill_flops"], "FLOP"),
         f"{c['num_tokens']:,} tokens after {c['prompt_tokens']:,} prompt tokens"],
        ["  attention projections", human(lt.get("attn_proj"), "FLOP"), "q, k, v, o"],
        ["  attention vs prompt + image", human(lt.get("attn_scores"), "FLOP"), "causal, 4·H·d_h·keys"],
        ["  MLP", human(lt.get("mlp"), "FLOP"), "6·n·d·m (MoE: active experts)"],
        ["KV cache, bf16", human(c["kv_bytes_bf16"], "B"),
         f"{human(c['kv_bytes_per_token'], 'B')} per token" if c["kv_bytes_per_token"] else "unavailable"],
        ["context window", f"{c['context']:,}" if c["context"] else "—",
         (f"this image uses {share:.2%}; {c['images_fit']:,} such images fit" if share else "unavailable")],
    ]


def format_report(rec: dict[str, Any]) -> str:
    """The report as text for the terminal."""
    head = f"{rec['model']}  {rec['width']}x{rec['height']}"
    if "error" in rec:
        return f"{head}\n  error: {rec['error']}"
    c = rec["cost"]
    lines = [head]
    lines += [f"  {p:32} {v:>14}  {h}" for p, v, h in cost_rows(c)]
    for label, items in (("unavailable", c["missing"]), ("unconfirmed architecture values", c["unconfirmed"]),
                         ("note", c["notes"])):
        lines += [f"  {label}: {item}" for item in items]
    lines.append("  the same image three ways:")
    lines += [f"    {r[0]:28} {r[2]:>8} tokens  vision {r[3]:>12}  prefill {r[4]:>12}  KV {r[5]:>11}  {r[6]:>7}"
              f"  ({r[1]})" for r in way_rows(rec["three_ways"])]
    if "engines" in rec:
        lines.append("  engines:")
        lines.append(engines_text(rec["engines"]))
    return "\n".join(lines)


SUMMARY_HEAD = (f"{'model':38} {'image':>9} {'tokens':>7} {'vision':>12} {'prefill':>12} {'KV bf16':>11} "
                f"{'context':>8} {'fit':>4} {'336 squash':>11} {'one view':>11}")


def summary_line(rec: dict[str, Any]) -> str:
    """One line: the cost, and the other two ways' total FLOPs relative to the preset's."""
    image = f"{rec['width']}x{rec['height']}"
    if "error" in rec:
        return f"{rec['model']:38} {image:>9}  error: {rec['error']}"
    c, ways = rec["cost"], rec["three_ways"]
    others = [ratio(w["total_flops"], ways[0]["total_flops"]) for w in ways[1:]] + ["—", "—"]
    share = f"{c['context_share']:.1%}" if c["context_share"] is not None else "—"
    fit = f"{c['images_fit']}" if c["images_fit"] is not None else "—"
    return (f"{rec['model']:38} {image:>9} {c['num_tokens']:>7,} {human(c['vision_flops'], 'FLOP'):>12} "
            f"{human(c['llm_prefill_flops'], 'FLOP'):>12} {human(c['kv_bytes_bf16'], 'B'):>11} "
            f"{share:>8} {fit:>4} {others[0]:>11} {others[1]:>11}")


def engines_text(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        tokens = r["error"] or f"{r['num_tokens']:,}"
        delta = r["delta_vs_transformers"]
        mark = " <- differs" if r["differs"] else ""
        change = f" ({delta:+,})" if delta else ""
        flag = "" if r["confirmed"] else "  [UNCONFIRMED]"
        out.append(f"    {r['engine']:12} {tokens:>10}{change}{mark}{flag}\n"
                   f"      {r['version']}; change with: {r['knob']}\n      rule: {r['rule']}"
                   + (f" ({r['note']})" if r["note"] else "") + f"\n      source: {r['source']}")
    return "\n".join(out)


def engine_records(model: str, size_hw: Size, settings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    base = resolve_preset(model)
    preset = base.with_overrides(**collect_overrides(base, **(settings or {})))
    return [row_record(r) for r in engine_rows(size_hw, preset)]


def engine_table(size_hw: Size, preset) -> tuple[list[str], list[list[Any]]]:
    return ROW_HEADERS, [row_cells(r) for r in engine_rows(size_hw, preset)]
