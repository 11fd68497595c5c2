"""Presets of the paper's evaluation runs (Tables 1-5), in every dataset file.

Linear evaluation (Tables 1, 2), kNN and the supervised baseline on all labels
use configs/base.py's recipe as is; these presets set what differs per row:
  finetune_1pct, finetune_5pct, finetune_10pct: section 4.4's label fraction
    with its epochs (100, 20, 10); also the supervised baseline's labels.
  teacher_2x: the 2x-wide network, pretrained and then fine-tuned as teacher.
  student: a 1x student distilled from a 2x teacher (Tables 3-5).
  paper_probe: the paper's own linear probe (section 4.3), without the
    feature standardisation that configs/base.py adds (linear.*).
"""


def _labels(fraction, epochs):
  def preset(c):
    c.finetune.fraction = fraction
    c.finetune.epochs = epochs
    c.supervised.fraction = fraction
  return preset


def teacher_2x(c):
  c.model.width = 2.0


def student(c):
  c.model.width = 1.0
  c.distill.teacher_width = 2.0


def paper_probe(c):
  c.linear.standardize_features = False


PRESETS = {
    'finetune_1pct': _labels(0.01, 100),
    'finetune_5pct': _labels(0.05, 20),
    'finetune_10pct': _labels(0.10, 10),
    'teacher_2x': teacher_2x,
    'student': student,
    'paper_probe': paper_probe,
}
