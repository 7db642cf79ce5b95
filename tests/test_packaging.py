"""setup.py lists every package folder, so `pip install .` (the main job's install) ships them all."""
import ast
from pathlib import Path

root = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_in_setup_py():
    tree = ast.parse((root / "setup.py").read_text())
    listed = next(ast.literal_eval(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "subpackages")
    found = sorted(".".join(path.parent.relative_to(root).parts) for path in root.glob("*/**/__init__.py")
                   if path.parent.relative_to(root).parts[0] not in ("tests", "bench", "build")
                   and not path.parent.relative_to(root).parts[0].startswith("."))
    assert sorted(listed) == found
