"""Reading prepared splits for the SFT, GRPO and eval stages (one reader: data.prepare.load_split)."""

from __future__ import annotations

from data.prepare import load_split as load_rows

__all__ = ["load_rows"]
