"""Errors a user can cause. The CLI prints their message as one line, without a traceback."""


class KbqaError(Exception):
    """Base class: the message says what went wrong and what to do."""


class ConfigError(KbqaError):
    """A setting has a bad value or a file of settings cannot be read."""


class NotIndexedError(KbqaError):
    """Nothing has been ingested yet. `home` is where kbqa looked: the CLI names it (a user on
    the wrong home sees which), the server does not (its paths are not a caller's business)."""

    def __init__(self, message: str, home: object = None):
        super().__init__(message)
        self.home = home


class ModelError(KbqaError):
    """A model cannot be found or loaded."""


class ParseError(KbqaError):
    """A source file cannot be turned into text."""


class MissingDependencyError(KbqaError):
    """An optional package is needed for this feature."""

    def __init__(self, package: str, extra: str):
        super().__init__(f"{package} is not installed: pip install 'kbqa[{extra}]'")
