"""The base of every error a user can fix: the CLI prints its message (which says what to do) and exits 1."""


class UserError(Exception):
    """Bad input, a wrong role, a missing file: nothing was changed, and the message says what to do."""


class NotFound(UserError):
    pass


class StateError(UserError):
    """The object is not in a state that allows the action (e.g. approving a superseded version)."""


class MissingRow(Exception):
    """A row the database promises (through a foreign key, or one this transaction just wrote) is not
    there: a damaged or hand-edited database, not bad input. An explicit error, not an ``assert``, so that
    the check survives ``python -O``."""
