"""Token calculator: `python -m anyres_demo tokens --model ID --size WxH [--image PATH] [--json]`.

Offline and exact (the engine mirrors the transformers processors). Errors become objects with
an `error` message and a non-zero exit code; no traceback reaches the user.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from .engine import plan_image, resolve_preset
from .geometry import Size, parse_size
from .layout import KIND_INFO
from .overrides import SETTING_SPECS, collect_overrides
from .presets import ALIASES, PRESETS


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m anyres_demo",
                                 description="Exact visual-token counts for AnyRes VLMs, offline.")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tokens", help="count visual tokens for image sizes or files")
    t.add_argument("--model", "-m", action="append", required=True,
                   help="HF repo id or alias (" + ", ".join(ALIASES) + "); repeatable")
    t.add_argument("--size", "-s", action="append", default=[], help="WIDTHxHEIGHT; repeatable")
    t.add_argument("--image", "-i", action="append", default=[], help="image file; repeatable")
    _setting_flags(t)
    t.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    t.add_argument("--engines", action="store_true",
                   help="also the image tokens under vLLM, SGLang, llama.cpp and Ollama defaults")
    sub.add_parser("models", help="list the presets")
    c = sub.add_parser("cost", help="compute, KV-cache memory and context share of an image")
    c.add_argument("--model", "-m", action="append", required=True, help="HF repo id or alias; repeatable")
    c.add_argument("--size", "-s", action="append", default=[], help="WIDTHxHEIGHT; repeatable")
    c.add_argument("--image", "-i", action="append", default=[], help="image file; repeatable")
    c.add_argument("--prompt-tokens", type=int, default=0,
                   help="text tokens before the image (the prefill attends to them); default 0")
    _setting_flags(c)
    c.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    c.add_argument("--summary", action="store_true",
                   help="one line per model and image (the other two ways as FLOP ratios)")
    return ap


def _setting_flags(parser: argparse.ArgumentParser) -> None:
    for spec in SETTING_SPECS.values():  # one flag per user setting; the engine validates it
        switch = {"nargs": "?", "const": "on", "metavar": "on|off"} if spec.kind == "bool" else {}
        parser.add_argument("--" + spec.name.replace("_", "-"), dest=spec.name, default=None, **switch,
                            help=f"{spec.label}: {spec.help}" if spec.help else spec.label)


def plan_record(model: str, size_hw: Size, source: str, settings: dict[str, Any]) -> dict[str, Any]:
    """One JSON object for one (model, image) pair; errors are reported, not raised."""
    rec: dict[str, Any] = {"model": model, "source": source,
                           "width": size_hw.width, "height": size_hw.height}
    try:
        preset = resolve_preset(model)
        rec["model"] = preset.repo_id
        rec["strategy"] = preset.strategy
        plan = plan_image(size_hw, preset, **collect_overrides(preset, **settings))
    except ValueError as exc:
        rec["error"] = str(exc)
        return rec
    rec.update(num_image_tokens=plan.num_image_tokens, num_special_tokens=plan.num_special_tokens,
               num_wrapper_tokens=plan.num_special_tokens,  # the older name of num_special_tokens
               num_tokens=plan.num_tokens, num_crops=plan.num_crops,
               canvas_hw=list(plan.canvas_hw.hw), resized_hw=list(plan.resized_hw.hw),
               grid_rows=plan.grid_rows, grid_cols=plan.grid_cols,
               tokens_by_kind=dict(plan.tokens_by_kind), formula=plan.formula,
               divergences=list(plan.divergences))
    return rec


def _sources(args) -> list[tuple[str, Size | str]]:
    """(label, Size) per --size / --image; an unreadable one yields (label, error message)."""
    out: list[tuple[str, Size | str]] = []
    for text in args.size:
        try:
            out.append((text, parse_size(text)))
        except ValueError as exc:
            out.append((text, str(exc)))
    for path in args.image:
        try:
            from .images import load_image  # Pillow only when files are given
            out.append((path, load_image(path).size_hw))
        except (ValueError, OSError) as exc:
            out.append((path, str(exc)))
    return out


def _table(records: list[dict[str, Any]]) -> str:
    # the three token counts, named as everywhere else: image tokens (the placeholders the
    # processor repeats), special tokens (markers around or between them), tokens in total
    head = (f"{'model':44} {'image':>11} {'grid':>6} {'crops':>5} {'image tokens':>12} "
            f"{'special tokens':>14} {'tokens in total':>15}  image tokens by kind")
    lines = [head, "-" * len(head)]
    for r in records:
        image = f"{r['width']}x{r['height']}"
        if "error" in r:
            lines.append(f"{r['model']:44} {image:>11}  error: {r['error']}")
            continue
        kinds = ", ".join(f"{k} {v}" for k, v in r["tokens_by_kind"].items() if KIND_INFO[k].placeholder)
        lines.append(f"{r['model']:44} {image:>11} {r['grid_rows']}x{r['grid_cols']:<4} "
                     f"{r['num_crops']:>5} {r['num_image_tokens']:>12} {r['num_special_tokens']:>14} "
                     f"{r['num_tokens']:>15}  {kinds}")
    return "\n".join(lines)


def _with_engines(rec: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    if "error" in rec:
        return rec
    from .cost_report import engine_records
    rec["engines"] = engine_records(rec["model"], Size(rec["height"], rec["width"]), settings)
    return rec


def _each_pair(args, record) -> list | None:
    """`record(model, size, label)` for every --model x (--size / --image); an unreadable source
    becomes an error object. None (after a message) when no size or image was given."""
    sources = _sources(args)
    if not sources:
        print("error: give at least one --size WxH or --image PATH", file=sys.stderr)
        return None
    return [{"model": model, "source": label, "error": size} if isinstance(size, str)
            else record(model, size, label) for model in args.model for label, size in sources]


def run_tokens(args) -> int:
    settings = {name: getattr(args, name) for name in SETTING_SPECS}

    def record(model, size, label):
        rec = plan_record(model, size, label, settings)
        return _with_engines(rec, settings) if args.engines else rec

    records = _each_pair(args, record)
    if records is None:
        return 2
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        print(_table([r if "width" in r else {**r, "width": "?", "height": "?"} for r in records]))
        if args.engines:
            from .cost_report import engines_text
            for r in records:
                if "engines" in r:
                    print(f"\n{r['model']}  {r['width']}x{r['height']}: image tokens per engine")
                    print(engines_text(r["engines"]))
    return 1 if any("error" in r for r in records) else 0


def run_cost(args) -> int:
    from .cost_report import SUMMARY_HEAD, cost_report, format_report, summary_line
    settings = {name: getattr(args, name) for name in SETTING_SPECS}
    records = _each_pair(args, lambda model, size, label: {
        **cost_report(model, size, settings, args.prompt_tokens), "source": label})
    if records is None:
        return 2
    if args.json:
        print(json.dumps(records, indent=2))
    elif args.summary:
        print("\n".join([SUMMARY_HEAD, "-" * len(SUMMARY_HEAD)]
                        + [summary_line(r if "width" in r else {**r, "width": "?", "height": "?"})
                           for r in records]))
    else:
        print("\n\n".join(format_report(r) if "width" in r else f"{r['model']}  {r['source']}\n  error: "
                           f"{r['error']}" for r in records))
    return 1 if any("error" in r for r in records) else 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed its usage message
        return int(exc.code or 0)
    if args.command == "models":
        for p in PRESETS.values():
            print(f"{p.repo_id:46} {p.strategy:16} {p.label}")
        return 0
    if args.command == "cost":
        return run_cost(args)
    return run_tokens(args)
