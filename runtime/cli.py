"""Entry-point wrapper: expected user errors print one line and exit 2, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from runtime.config import ConfigError


def user_errors() -> tuple[type[BaseException], ...]:
    from data.readers import DataError

    return (ConfigError, DataError, FileNotFoundError)


def run(main: Callable[[], object]) -> None:
    try:
        main()
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
