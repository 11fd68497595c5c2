"""The package's import graph: layers that follow the data flow, no cycle.

Read with `ast` from the source, so the test needs no import to succeed.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'byol_skeleton'
# Raw data -> input pipeline -> model -> training machinery -> measurement of
# an encoder -> BYOL -> protocols -> command lines. A module imports from its
# own layer or lower ones only.
LAYERS = ('errors', 'data', 'model', 'train', 'evaluation', 'pretraining',
          'protocols', 'main', 'demo')
FORBIDDEN = ('data_prep', 'configs')  # the package never reaches out to these


def _layer(module: str) -> int:
  return LAYERS.index(module.split('.')[1])


def _imports(path: pathlib.Path) -> set[str]:
  """Top-level project modules and packages imported by one source file."""
  out = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      out.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      out.update(f'{node.module}.{alias.name}' for alias in node.names)
      out.add(node.module)
  return out


def import_graph(package: pathlib.Path = PACKAGE) -> dict[str, set[str]]:
  """{module: modules of the project it imports}, dotted names."""
  modules = {}
  for path in sorted(package.rglob('*.py')):
    parts = path.relative_to(package.parent).with_suffix('').parts
    if parts[-1] == '__init__':
      continue
    modules['.'.join(parts)] = path
  graph = {}
  for name, path in modules.items():
    imported = _imports(path)
    graph[name] = {m for m in imported if m in modules}
    graph[name] |= {m for m in imported if m.split('.')[0] in FORBIDDEN}
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle of the graph as a path [a, b, ..., a], or None."""
  state = {}  # module -> 'open' while on the path, 'done' after

  def visit(node, path):
    state[node] = 'open'
    for succ in sorted(graph.get(node, ())):
      if state.get(succ) == 'open':
        return path[path.index(succ):] + [succ] if succ in path else [node, succ]
      if succ not in state:
        cycle = visit(succ, path + [succ])
        if cycle:
          return cycle
    state[node] = 'done'
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = visit(node, [node])
      if cycle:
        return cycle
  return None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
  out = []
  for module, imported in sorted(graph.items()):
    for target in sorted(imported):
      if target.split('.')[0] in FORBIDDEN:
        out.append(f'{module} imports {target}')
      elif _layer(target) > _layer(module):
        out.append(f'{module} ({LAYERS[_layer(module)]}) imports {target} '
                   f'({LAYERS[_layer(target)]})')
  return out


def test_every_module_belongs_to_a_layer():
  for module in import_graph():
    assert module.split('.')[1] in LAYERS, module


def test_no_cycle_and_no_upward_or_forbidden_import():
  graph = import_graph()
  assert find_cycle(graph) is None, ' -> '.join(find_cycle(graph))
  assert layer_violations(graph) == []


@pytest.mark.parametrize('module,added,expected', [
    # protocols.classifier imports train.loop: a loop that reached back
    # into a protocol for a helper would close a circle
    ('byol_skeleton.train.loop', 'byol_skeleton.protocols.classifier',
     'cycle'),
    ('byol_skeleton.model.stgcn', 'byol_skeleton.train.parallel', 'upward'),
    ('byol_skeleton.demo', 'configs.synthetic', 'forbidden'),
])
def test_checks_catch_an_edge_added_by_hand(module, added, expected):
  graph = import_graph()
  graph[module] = graph[module] | {added}
  violations = layer_violations(graph)
  if expected == 'cycle':
    assert find_cycle(graph) is not None
  assert any(v.startswith(f'{module} ') and added in v for v in violations)
  if expected == 'forbidden':
    assert f'{module} imports {added}' in violations


def test_cycle_search_on_a_hand_made_graph():
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
  assert find_cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) is None
