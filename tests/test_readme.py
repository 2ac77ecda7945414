"""The README for users: short, its commands as CI runs them, and its Python snippet runs."""
import re
import runpy
from pathlib import Path

README = Path(__file__).resolve().parents[1] / 'README.md'


def test_the_readme_is_short_and_has_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 110
    for command in ('python3 -m pip install -r requirements-tools.txt && '
                    'python3 test.py -p . -d data',
                    'python3 -m pip install -r requirements-dev.txt && python3 -m pytest -q',
                    'python -m Miniproject_2.others.denoise'):
        assert command in text
    assert '**shipped `bestmodel.pth`**' in text  # the results table's row


def test_the_python_snippet_runs(tmp_path, capsys):
    snippets = re.findall(r'```python\n(.*?)```', README.read_text(), re.S)
    assert len(snippets) == 1
    script = tmp_path / 'snippet.py'
    script.write_text(snippets[0])
    runpy.run_path(str(script), run_name='__main__')
    assert capsys.readouterr().out.startswith('loss ')
