"""Errors a user can fix: the CLI prints their message as one sentence, no traceback."""


class UserError(Exception):
  """Bad input, a bad path, or a config that does not fit the data or checkpoint."""
