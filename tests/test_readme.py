import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_research_snippet_runs_and_trains(capsys):
  text = README.read_text()
  block = re.search(r"<!-- research-snippet -->\s*```python\n(.*?)```", text, re.S)
  assert block, "README lost its research snippet"
  namespace = {}
  exec(compile(block.group(1), "README.md", "exec"), namespace)
  state, fakes = namespace["state"], namespace["fakes"]
  assert int(state.step) == 3   # two g_steps + one fused train_step
  assert fakes.shape == (8, 32, 32, 1)
  assert float(abs(fakes).max()) <= 1.0
  printed = capsys.readouterr().out.split()
  assert printed[0] == "3"
