"""The package's import structure: no cycles, families behind one registry, bases above subclasses.

Every module's imports are read with ``ast`` (module level and inside functions alike) and
resolved to modules of ``jaxgan``; ``from jaxgan import x`` counts as an import of ``jaxgan.x``
when ``x`` is a module (and of ``jaxgan`` itself otherwise).
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "jaxgan"

# The family modules: only the registry (jaxgan.families) and other family modules import them.
FAMILY_PACKAGE = "jaxgan.families"
# The modules that may import the registry: the loops (one run, many seeds) and the command-line
# tools (they look the
# run's family up once and call its interface). Every other generic module is family-blind.
REGISTRY_USERS = ("jaxgan.trainer", "jaxgan.sample", "jaxgan.evaluate", "jaxgan.multiseed")
# Calls that write files: only the trainer and the run directory write a run's outputs; hooks
# and families return what to keep.
WRITERS = {"open", "makedirs", "imsave", "savefig", "savez", "savez_compressed", "save", "dump",
           "save_grid", "save_picture", "save_class_grid", "assemble_film"}


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
  parts = path.relative_to(root.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: pathlib.Path = ROOT) -> dict[str, pathlib.Path]:
  return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports(path: pathlib.Path, known: set[str], root: pathlib.Path = ROOT) -> set[str]:
  """The jaxgan modules ``path`` imports anywhere in its body."""
  name = module_name(path, root)
  package = name if path.name == "__init__.py" else name.rpartition(".")[0]
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # relative import
        anchor = package.split(".")
        anchor = anchor[:len(anchor) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
      for a in node.names:  # `from pkg import module` imports the module; else pkg's names
        found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
  return {m for m in found if m in known and m != name}


def graph(root: pathlib.Path = ROOT) -> dict[str, set[str]]:
  mods = modules(root)
  return {name: imports(path, set(mods), root) for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
  """One import cycle (a list of modules, the first repeated at the end), or None."""
  state: dict[str, int] = {}
  stack: list[str] = []

  def visit(node):
    state[node] = 1
    stack.append(node)
    for nxt in sorted(edges.get(node, ())):
      if state.get(nxt) == 1:
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        cycle = visit(nxt)
        if cycle:
          return cycle
    stack.pop()
    state[node] = 2
    return None

  for node in sorted(edges):
    if node not in state:
      cycle = visit(node)
      if cycle:
        return cycle
  return None


def is_family_module(name: str) -> bool:
  return name.startswith(FAMILY_PACKAGE + ".") and name != FAMILY_PACKAGE + ".base"


def family_blind_violations(edges: dict[str, set[str]]) -> list[str]:
  """Imports of a family module by a module outside jaxgan.families, and of the registry by a
  module other than the loop and the command-line tools."""
  return sorted(f"{src} imports {dst}" for src, dsts in edges.items() for dst in dsts
                if not src.startswith(FAMILY_PACKAGE)
                and (is_family_module(dst) or dst == FAMILY_PACKAGE and src not in REGISTRY_USERS))


def file_writes(path: pathlib.Path) -> list[str]:
  """The calls in ``path`` that write files (``open``, ``os.makedirs``, ``plt.imsave``, ...)."""
  found = []
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Call):
      name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
      if name in WRITERS:
        found.append(f"{path.name}:{node.lineno} {name}()")
  return found


def base_imports_subclass(edges: dict[str, set[str]]) -> list[str]:
  """A base module (``.../base.py``, or ``jaxgan.hooks``) importing a module that builds on it."""
  bases = [m for m in edges if m.endswith(".base") or m == "jaxgan.hooks"]
  return sorted(f"{b} imports {d}" for b in bases for d in edges[b] if b in edges.get(d, set())
                or b in _reachable(edges, d))


def _reachable(edges, start):
  seen, todo = set(), [start]
  while todo:
    for nxt in edges.get(todo.pop(), ()):
      if nxt not in seen:
        seen.add(nxt)
        todo.append(nxt)
  return seen


def test_the_package_has_no_import_cycle():
  edges = graph()
  assert len(edges) > 40 and "jaxgan.trainer" in edges
  cycle = find_cycle(edges)
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_generic_module_imports_a_family():
  edges = graph()
  assert family_blind_violations(edges) == []
  # The trainer and the command-line tools reach the families through the registry only.
  for tool in ("jaxgan.trainer", "jaxgan.sample", "jaxgan.evaluate"):
    assert FAMILY_PACKAGE in edges[tool], tool


def test_hooks_and_families_write_no_files():
  sources = [ROOT / "hooks.py", *sorted((ROOT / "families").glob("*.py"))]
  assert [w for p in sources for w in file_writes(p)] == []
  assert file_writes(ROOT / "workdir.py")   # the run directory is where the writing is


def test_no_base_module_imports_what_builds_on_it():
  assert base_imports_subclass(graph()) == []


def test_every_family_module_is_registered():
  from jaxgan import families
  registered = {type(f).__module__ for f in families.FAMILIES.values()}
  on_disk = {m for m in modules() if is_family_module(m)}
  assert on_disk == registered


@pytest.mark.parametrize("source,expected", [
    # A loop through an import inside a function is a loop.
    ({"a.py": "import jaxgan.b\n", "b.py": "def f():\n  from jaxgan import a\n"}, ["a", "b", "a"]),
    ({"a.py": "from jaxgan import b\n", "b.py": "x = 1\n"}, None),
])
def test_the_checker_finds_cycles_through_function_level_imports(tmp_path, source, expected):
  pkg = tmp_path / "jaxgan"
  pkg.mkdir()
  (pkg / "__init__.py").write_text("")
  for name, text in source.items():
    (pkg / name).write_text(text)
  cycle = find_cycle(graph(pkg))
  assert (cycle is None) if expected is None else [c.split(".")[-1] for c in cycle] == expected


def test_the_checker_flags_a_generic_module_that_names_a_family():
  edges = {"jaxgan.trainer": {"jaxgan.families.translation", "jaxgan.families"},
           "jaxgan.families.translation": set(), "jaxgan.config": {"jaxgan.families"},
           "jaxgan.families": {"jaxgan.families.translation"}, "jaxgan.sample": {"jaxgan.families"}}
  assert family_blind_violations(edges) == [
      "jaxgan.config imports jaxgan.families", "jaxgan.trainer imports jaxgan.families.translation"]
  assert base_imports_subclass({"jaxgan.hooks": {"jaxgan.x"}, "jaxgan.x": {"jaxgan.hooks"}}) == [
      "jaxgan.hooks imports jaxgan.x"]
