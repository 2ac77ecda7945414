"""The README for users: short, its commands as CI runs them, and its Python snippet runs."""
import json
import re
import runpy
from pathlib import Path

README = Path(__file__).resolve().parents[1] / 'README.md'


def test_the_readme_is_short_and_has_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 130  # the families table and the photos table included
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


def test_the_readme_quotes_the_bench_as_measured():
    bench = json.loads((README.parent / 'results/bench.json').read_text())
    step = {batch: bench['shipped'][f'train_step_batch_{batch}'] for batch in (32, 100)}
    quoted = (f"takes {step[32]['ratio']:.2f}x torch.nn's fastest (channels_last) time at batch 32, "
              f"{step[100]['ratio']:.2f}x at 100")
    assert quoted in ' '.join(README.read_text().split())
    assert f"rate there, {step[32]['gemm_floor_ratio']:.2f}x" in README.read_text()


def test_the_readme_quotes_the_families_and_photos_as_measured():
    """Each family's and each photo noise's row carries the PSNRs of the result files."""
    text = README.read_text()
    for name, scores in (('families', 'rows'), ('photos', 'rows')):
        rows = json.loads((README.parent / f'results/{name}.json').read_text())[scores]
        for noise, row in rows.items():
            quoted = [f'{psnr:.2f}' for psnr in [row['noisy'], *row['models'].values()]]
            assert any(all(psnr in line for psnr in quoted) for line in text.splitlines()
                       if line.startswith(f'| {noise}')), (name, noise, quoted)


def test_the_readme_quotes_the_validation_and_the_families_count_as_measured():
    """The introduction's and the results' numbers: the shipped model against the specialist
    trained as long (results/compare.json), and how many families it was measured on."""
    text = ' '.join(README.read_text().split())
    results = json.loads((README.parent / 'results/compare.json').read_text())['results']
    shipped = results['shipped bestmodel.pth']['psnr']
    specialist = results['trained on pixelation only']['psnr']
    assert f'within {specialist - shipped:.2f} dB of a pixelation specialist' in text
    assert (f'shipped model scores {shipped:.2f} dB, the pixelation-only weights trained as '
            f'long {specialist:.2f}') in text
    rows = json.loads((README.parent / 'results/families.json').read_text())['rows']
    held_out = ['none', 'one', 'two', 'three', 'four', 'five', 'six'][
        sum(row['held_out'] for row in rows.values())]
    assert f'all {len(rows)} noises we measured, including {held_out} it never saw' in text
    assert f'On {len(rows)} noise families' in text
