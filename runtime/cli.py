"""Entry-point wrapper: one exit-code convention for every command-line tool.

- 0: done.
- 2: bad input the user can fix (a config key, a data file, a checkpoint, an adapter dir): one line
  `error: <message>` naming the key or file, never a traceback.
- 1: a failure while running (an engine crashed, a stage failed, a bug): Python's traceback, which is
  what a bug report needs.
- 130: interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from runtime.errors import UserError


def run(main: Callable[[], object]) -> None:
    try:
        rc = main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(rc if isinstance(rc, int) else 0)
