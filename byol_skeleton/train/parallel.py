"""Data parallelism with pmap semantics: a per-device function over a 1-D mesh."""
import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from byol_skeleton import errors

AXIS = 'batch'  # The mesh axis every step is mapped over.


def make_mesh(devices=None) -> Mesh:
  """All devices of all processes (or `devices`) on one data-parallel axis."""
  return Mesh(np.asarray(jax.devices() if devices is None else devices),
              (AXIS,))


def data_parallel(per_device_fn, mesh: Mesh, num_batch_args: int = 1,
                  num_replicated_args: int = 0):
  """Maps `per_device_fn(state, *batch_args, *replicated_args)` like pmap.

  The state and the trailing replicated arguments (e.g. a frozen teacher)
  are replicated; the batch arguments are split along their leading axis.
  `check_vma=False` keeps pmap's semantics: gradients are per-device
  and the function averages them itself with `lax.pmean` (with varying-axis
  checking on, JAX would also sum the gradients of replicated inputs).
  """
  return jax.shard_map(
      per_device_fn, mesh=mesh,
      in_specs=((P(),) + (P(AXIS),) * num_batch_args +
                (P(),) * num_replicated_args),
      out_specs=(P(), P()), check_vma=False)


def per_device_batch(batch_size: int, field: str) -> int:
  """The per-device batch; a global batch must split evenly over devices."""
  n = jax.device_count()
  if batch_size % n:
    raise errors.UserError(
        f'{field}={batch_size} is not divisible by the {n} devices; '
        f'use a multiple of {n}.')
  return batch_size // n


def to_device(batch: dict, mesh) -> dict:
  """Host batch -> global arrays sharded over the mesh's 'batch' axis.

  Every process passes its own share; the global batch is their concatenation
  in process order.
  """
  sharding = NamedSharding(mesh, P(AXIS))
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
