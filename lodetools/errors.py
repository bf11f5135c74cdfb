"""Errors that lodetools reports to its user.

Every problem caused by the user's input or configuration is a
:class:`LodeError` (or one of its kinds). The CLI prints it as one line,
``error: <what> (<path>)``, and exits with :data:`EXIT_USER`. Anything else
that escapes is an internal bug and exits with :data:`EXIT_BUG`.
"""

from __future__ import annotations

import os

#: Exit code for bad input, missing input or bad configuration.
EXIT_USER = 2
#: Exit code when some items failed but the run continued (``--on-error skip``).
EXIT_PARTIAL = 3
#: Exit code for an internal bug (an unexpected exception), as sysexits' EX_SOFTWARE.
EXIT_BUG = 70


class LodeError(Exception):
    """A problem with the user's input or configuration.

    Parameters
    ----------
    what : str
        One-line description of the problem, e.g. ``"even frame count M=8"``.
    path : str or os.PathLike, optional
        The file or folder the problem is about.
    """

    kind = "error"

    def __init__(self, what: str, path: str | os.PathLike | None = None):
        self.what = str(what).replace("\n", " ").strip()
        self.path = None if path is None else os.fspath(path)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The one-line message, ``<what> (<path>)``."""
        return f"{self.what} ({self.path})" if self.path else self.what

    def __reduce__(self):  # picklable across process pools, keeping the kind
        return (type(self), (self.what, self.path))


class BadInput(LodeError):
    """An input exists but is wrong: corrupt, wrong size, wrong CFA, ..."""

    kind = "bad input"


class MissingInput(LodeError):
    """An input that is required does not exist (file, folder, partner, ...)."""

    kind = "missing input"


class BadConfig(LodeError):
    """A recipe, calibration file or option value is invalid."""

    kind = "bad configuration"


class OutputConflict(LodeError):
    """The output folder holds results that the run must not overwrite."""

    kind = "output conflict"


class SystemProblem(LodeError):
    """The operating system refused a file operation: permission, full disk, a file where a folder is expected, ..."""

    kind = "system error"


def from_os_error(exc: BaseException) -> LodeError | None:
    """The one-line error for an operating-system error on a named path.

    ``open``, ``os.replace``, ``mkdir`` and friends raise an :class:`OSError`
    whose ``filename`` names the path; that becomes ``<what> (<path>)``, e.g.
    ``permission denied (out/train)``. A missing file is a
    :class:`MissingInput`, anything else a :class:`SystemProblem`.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    LodeError or None
        None when ``exc`` is not an :class:`OSError` naming a path (then it
        is an internal error).
    """
    if not isinstance(exc, OSError) or exc.filename is None:
        return None
    what = (exc.strerror or type(exc).__name__).strip()
    what = what[:1].lower() + what[1:]
    path = os.fsdecode(exc.filename) if isinstance(exc.filename, (str, bytes, os.PathLike)) else str(exc.filename)
    if exc.filename2 is not None:
        path += f" -> {os.fsdecode(exc.filename2)}"
    kind = MissingInput if isinstance(exc, FileNotFoundError) else SystemProblem
    err = kind(what, path)
    err.__cause__ = exc
    return err
