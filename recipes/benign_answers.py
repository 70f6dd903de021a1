"""Write data/builtin/benign_answers.jsonl: the retain set of the demo's SFT (`data.retain`).

    python -m recipes.benign_answers [--responses RESPONSES.jsonl] [--out data/builtin/benign_answers.jsonl]
    python -m recipes.benign_answers --add-missing     # answer only prompts added since; the rest unchanged

The base model's own greedy answers to the builtin benign prompts (data/builtin/benign.jsonl), made
with the demo system prompt by `python -m evals.run` (vLLM, greedy, 80 tokens). Training on them is
self-distillation: it teaches the SFT model to keep answering benign prompts the way it already
did while it learns to refuse malicious ones. Kept: answers that no refusal marker flags; an answer
cut at the token limit is trimmed back to its last full sentence (and dropped if none is left).
sft/train.py uses only the answers whose prompt is a benign row of its training split.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from recipes.stages import PY, ROOT, stage
from reward.refusal import refusal_probability
from runtime.io import read_jsonl, write_jsonl
from runtime.models import DEFAULT_MODEL

OUT = ROOT / "data" / "builtin" / "benign_answers.jsonl"
PROMPTS = ROOT / "data" / "builtin" / "benign.jsonl"
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def trim_to_sentence(text: str) -> str:
    """The text up to and including its last sentence end ('' if it has none)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else ""


def answers_from_responses(rows: list[dict], model: str = DEFAULT_MODEL) -> list[dict]:
    """Retain pairs from evals.run responses: marker refusals dropped, truncated answers trimmed."""
    refused = refusal_probability([r["response"] for r in rows], "markers")
    out = []
    for r, p in zip(rows, refused):
        text = r["response"].strip()
        if r.get("finish_reason") == "length":
            text = trim_to_sentence(text)
        if p >= 0.5 or len(text.split()) < 5:
            continue
        out.append({"prompt": r["prompt"], "completion": text, "category": r.get("category"),
                    "label": "benign", "source": f"{model}-greedy"})
    return out


def generate(responses_dir: Path, max_tokens: int = 80, prompts: Path = PROMPTS, model: str = DEFAULT_MODEL) -> Path:
    """The base model's greedy answers (project default system prompt) through evals.run."""
    stage("generate", [PY, "-m", "evals.run", "--model", model, "--data", str(prompts),
                       "--out", str(responses_dir), "--max-tokens", str(max_tokens), "--backend", "vllm",
                       "--detector", "markers"], {})
    return responses_dir / "responses.jsonl"


def missing_prompts(prompt_rows: list[dict], answers: list[dict]) -> list[dict]:
    """The prompt rows that have no answer yet (in file order)."""
    have = {a["prompt"] for a in answers}
    return [r for r in prompt_rows if r["text"] not in have]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--responses", help="an evals.run responses.jsonl to convert (default: generate one)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--model", default=DEFAULT_MODEL,
                    help="whose answers: the retain set is the model's own (another model gets its own file)")
    ap.add_argument("--add-missing", action="store_true",
                    help="keep OUT's answers as they are; answer only the prompts that have none, and append")
    args = ap.parse_args(argv)
    existing = read_jsonl(args.out) if args.add_missing else []
    with tempfile.TemporaryDirectory() as tmp:
        prompts = PROMPTS
        if args.add_missing:
            todo = missing_prompts(read_jsonl(PROMPTS), existing)
            if not todo:
                print(f"every prompt of {PROMPTS} has an answer in {args.out}")
                return
            prompts = Path(tmp) / "missing.jsonl"
            write_jsonl(prompts, todo)
        path = Path(args.responses) if args.responses else generate(Path(tmp) / "gen", prompts=prompts,
                                                                             model=args.model)
        rows = read_jsonl(path)
        kept = answers_from_responses(rows, args.model)
    write_jsonl(args.out, existing + kept)
    print(f"wrote {len(kept)} of {len(rows)} answers to {args.out}" + (f" after its {len(existing)}" if existing else ""))


if __name__ == "__main__":
    main()
