"""The optimizers of pretraining and of the classifier protocols."""
import jax
import optax

from byol_skeleton import errors

OPTIMIZERS = ('sgd', 'lars')


def make_optimizer(name: str, lr_fn, momentum: float,
                   weight_decay: float) -> optax.GradientTransformation:
  if name == 'sgd':
    # PyTorch-style SGD: weight decay joins the gradient before momentum.
    return optax.chain(optax.add_decayed_weights(weight_decay),
                       optax.sgd(lr_fn, momentum=momentum))
  if name == 'lars':
    # As BYOL: no decay or trust-ratio scaling on biases and BN parameters.
    matrices = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
    return optax.lars(lr_fn, weight_decay=weight_decay,
                      weight_decay_mask=matrices, trust_ratio_mask=matrices,
                      momentum=momentum)
  raise errors.UserError(f'optimizer {name!r}; expected one of {OPTIMIZERS}.')


def byol_optimizer(pc, lr_fn) -> optax.GradientTransformation:
  """Pretraining's optimizer (config.pretrain = pc): the predictor's rate is
  pc.predictor_lr_scale times the encoder's and projector's.

  SGD's and LARS's updates are linear in the rate, so scaling the predictor's
  updates scales its rate, weight decay and momentum included. At scale 1 (the
  paper) the optimizer and its state are make_optimizer's.
  """
  if pc.optimizer not in OPTIMIZERS:
    raise errors.UserError(
        f'pretrain.optimizer={pc.optimizer!r}; expected one of {OPTIMIZERS}.')
  tx = make_optimizer(pc.optimizer, lr_fn, pc.momentum, pc.weight_decay)
  if pc.predictor_lr_scale == 1:
    return tx
  predictor_only = lambda params: {
      part: jax.tree.map(lambda _: part == 'predictor', tree)
      for part, tree in params.items()}
  return optax.chain(
      tx, optax.masked(optax.scale(pc.predictor_lr_scale), predictor_only))
