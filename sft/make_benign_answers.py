"""Write sft/data/benign_answers.jsonl: the retain set of the demo's SFT (`data.retain`).

    python -m sft.make_benign_answers [--responses RESPONSES.jsonl] [--out sft/data/benign_answers.jsonl]

The base model's own greedy answers to the builtin benign prompts (data/builtin/benign.jsonl), made
with the demo system prompt by `python -m evals.run` (vLLM, greedy, 80 tokens). Training on them is
self-distillation: it teaches the SFT model to keep answering benign prompts the way it already
did while it learns to refuse malicious ones. Kept: answers that no refusal marker flags; an answer
cut at the token limit is trimmed back to its last full sentence (and dropped if none is left).
sft/train.py uses only the answers whose prompt is a benign row of its training split.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from reward.refusal import refusal_probability
from sft.attack import write_jsonl

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "sft" / "data" / "benign_answers.jsonl"
PROMPTS = ROOT / "data" / "builtin" / "benign.jsonl"
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def trim_to_sentence(text: str) -> str:
    """The text up to and including its last sentence end ('' if it has none)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else ""


def answers_from_responses(rows: list[dict]) -> list[dict]:
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
                    "label": "benign", "source": "smollm2-135m-greedy"})
    return out


def generate(responses_dir: Path, max_tokens: int = 80) -> Path:
    system_prompt = yaml.safe_load((ROOT / "configs" / "demo_sft.yaml").read_text())["data"]["system_prompt"]
    cmd = [sys.executable, "-m", "evals.run", "--model", "smollm2-135m", "--data", str(PROMPTS),
           "--out", str(responses_dir), "--system-prompt", system_prompt, "--max-tokens", str(max_tokens),
           "--backend", "vllm", "--detector", "markers"]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return responses_dir / "responses.jsonl"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--responses", help="an evals.run responses.jsonl to convert (default: generate one)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.responses) if args.responses else generate(Path(tmp) / "gen")
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        kept = answers_from_responses(rows)
    write_jsonl(kept, args.out)
    print(f"wrote {len(kept)} of {len(rows)} answers to {args.out}")


if __name__ == "__main__":
    main()
