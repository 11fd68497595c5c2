"""Why a raw recording file gives no skeleton: the readers' errors.

`MalformedFile`: the file breaks its format (the message names file and
line). `SkipSample`: the file is well formed but unusable, under one of the
reasons below. The data builders count both per reason and go on; so does
`--mode=predict`.
"""
# Skip reasons: keys of the build report and of predict's skipped list.
UNREADABLE = 'unreadable file'
NO_BODY = 'no body in any frame'
ONLY_NOISE = 'only noise bodies'
TOO_FEW_FRAMES = 'too few frames'
WRONG_JOINTS = 'wrong joint count'
# Records of 2D annotation pickles (raw/pose2d.py).
NO_PERSON = 'no person detected'
NON_FINITE = 'NaN or infinite keypoint'
SHAPE_MISMATCH = 'shape mismatch'


class MalformedFile(ValueError):
  """A raw file that breaks its format; the message names file and line."""

  def __init__(self, path, line: int | None, message: str):
    where = f'{path}:{line}' if line is not None else f'{path}'
    super().__init__(f'{where}: {message}')
    # What is wrong, and where in the file, without the path.
    self.detail = f'line {line}: {message}' if line is not None else message


class SkipSample(Exception):
  """A readable sample that cannot become an example, counted under `reason`."""

  def __init__(self, reason: str, message: str):
    super().__init__(message)
    self.reason = reason
