"""Errors every layer shares."""

from __future__ import annotations


class ParamError(ValueError):
    """A DAG param is invalid. Raised by the code that knows the param, with its name in
    ``param`` and a message that names it too; a task fails on it at once, without retries."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
