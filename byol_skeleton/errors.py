"""Errors a user can fix: the CLI prints their message as one sentence, no traceback."""
import contextlib
import signal
import sys



class UserError(Exception):
  """Bad input, a bad path, or a config that does not fit the data or checkpoint."""


class Interrupted(Exception):
  """SIGTERM/SIGINT stopped a run after it saved its step; rerunning resumes.

  The CLI exits with 128 + the signal's number (143, 130), as a shell does.
  """

  def __init__(self, signum: int, name: str, step: int, directory):
    self.signum = signum
    self.exit_code = 128 + signum
    super().__init__(f'{name}: {signal.Signals(signum).name} received: saved '
                     f'step {step} in {directory}, exiting; the same command '
                     'resumes it.')


def fail(message: str):
  """Prints one sentence (library messages often lack the full stop); exits 2."""
  message = message.rstrip()
  if not message.endswith(('.', '?', '!')):
    message += '.'
  print(f'byol-skeleton: error: {message}', file=sys.stderr)
  sys.exit(2)


@contextlib.contextmanager
def reported():
  """A command line's body: a UserError is one sentence and exit code 2, an
  interruption its message and 128 + the signal's number."""
  try:
    yield
  except UserError as e:
    fail(str(e))
  except Interrupted as e:
    print(f'byol-skeleton: {e}', file=sys.stderr)
    sys.exit(e.exit_code)
