"""The training command: checkpoints every epoch, resumes exactly, keeps the best weights."""
import json

import pytest
import torch

from Miniproject_2.model import Model
from Miniproject_2.others import train


def settings_for(folder, run, epochs=2):
    settings, _ = train.parse_settings(['--data', str(folder), '--run', str(run),
                                        '--epochs', str(epochs), '--widths', '8,8',
                                        '--batch-size', '16'])
    return settings


def test_interrupted_run_resumes_to_the_same_weights(data_folder, tmp_path, monkeypatch):
    data = train.load_pairs(data_folder)
    _, straight = train.train_run(settings_for(data_folder, tmp_path / 'a'), data, tmp_path / 'a')

    real_save = train.save_atomically

    def save_then_die(obj, path):  # the session ends right after the first checkpoint
        real_save(obj, path)
        raise KeyboardInterrupt
    monkeypatch.setattr(train, 'save_atomically', save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train.train_run(settings_for(data_folder, tmp_path / 'b'), data, tmp_path / 'b')
    monkeypatch.setattr(train, 'save_atomically', real_save)
    log, resumed = train.train_run(settings_for(data_folder, tmp_path / 'b'), data, tmp_path / 'b')

    assert [e['epoch'] for e in log['epochs']] == [1, 2]
    for name, tensor in straight.denoiser.network.state_dict().items():
        assert torch.equal(tensor, resumed.denoiser.network.state_dict()[name]), name
    assert json.loads((tmp_path / 'b' / 'log.json').read_text())['epochs'] == log['epochs']


def test_finished_run_is_not_trained_again(data_folder, tmp_path):
    data = train.load_pairs(data_folder)
    settings = settings_for(data_folder, tmp_path / 'run', epochs=1)
    first, _ = train.train_run(settings, data, tmp_path / 'run')
    again, _ = train.train_run(settings, data, tmp_path / 'run')
    assert again == first


def test_other_settings_refuse_the_run_folder(data_folder, tmp_path):
    data = train.load_pairs(data_folder)
    train.train_run(settings_for(data_folder, tmp_path / 'run', epochs=1), data, tmp_path / 'run')
    with pytest.raises(ValueError, match='other settings'):
        train.train_run(settings_for(data_folder, tmp_path / 'run', epochs=3), data,
                        tmp_path / 'run')


def test_best_weights_load_as_pretrained(data_folder, tmp_path):
    out = tmp_path / 'best.pth'
    train.main(['--data', str(data_folder), '--run', str(tmp_path / 'run'), '--epochs', '2',
                '--widths', '8,8', '--batch-size', '16', '--out', str(out)])
    log = json.loads((tmp_path / 'run' / 'log.json').read_text())
    model = Model()
    model.load_pretrained_model(out)
    assert model.denoiser.architecture['widths'] == (8, 8)
    best = max(e['val_psnr'] for e in log['epochs'])
    (noisy, clean) = train.load_pairs(data_folder)[1]
    assert train.validation_psnr(model, noisy, clean) == pytest.approx(best, abs=1e-6)


def test_missing_data_names_the_command_that_builds_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='Miniproject_2.others.data'):
        train.load_pairs(tmp_path)


def test_a_warm_restart_starts_from_its_weights_and_keeps_the_best(data_folder, tmp_path):
    data = train.load_pairs(data_folder)
    first, model = train.train_run(settings_for(data_folder, tmp_path / 'first'), data,
                                   tmp_path / 'first')
    model.save(tmp_path / 'start.pth')
    out = tmp_path / 'best.pth'
    settings, _ = train.parse_settings(['--data', str(data_folder), '--run',
                                        str(tmp_path / 'again'), '--epochs', '1',
                                        '--widths', '8,8', '--batch-size', '16', '--lr', '1e-9',
                                        '--init', str(tmp_path / 'start.pth')])
    log, restarted = train.train_run(settings, data, tmp_path / 'again', out)
    # A negligible learning rate: the restart keeps the weights it started from.
    assert log['init_val_psnr'] == pytest.approx(first['epochs'][-1]['val_psnr'], abs=1e-6)
    assert log['epochs'][0]['val_psnr'] == pytest.approx(log['init_val_psnr'], abs=1e-3)
    assert restarted.trainer.recipe.finetune_lr == 1e-9
    # --out holds the better of the weights it started from and the epoch's.
    improved = log['epochs'][0]['val_psnr'] > log['init_val_psnr']
    best = Model()
    best.load(out)
    expected = restarted if improved else model
    for name, tensor in best.denoiser.network.state_dict().items():
        assert torch.equal(tensor, expected.denoiser.network.state_dict()[name]), name


def test_a_warm_restart_no_epoch_improves_keeps_its_start(data_folder, tmp_path, capsys,
                                                          monkeypatch):
    data = train.load_pairs(data_folder)
    _, model = train.train_run(settings_for(data_folder, tmp_path / 'first', epochs=1), data,
                               tmp_path / 'first')
    model.save(tmp_path / 'start.pth')
    scores = iter([30.0, 29.0, 29.5])  # the start, then two worse epochs
    monkeypatch.setattr(train, 'validation_psnr', lambda *args: next(scores))
    train.main(['--data', str(data_folder), '--run', str(tmp_path / 'again'), '--epochs', '2',
                '--widths', '8,8', '--batch-size', '16', '--init', str(tmp_path / 'start.pth'),
                '--out', str(tmp_path / 'best.pth')])
    assert 'best validation PSNR 30.000 dB: the initial weights' in capsys.readouterr().out
    best = Model()
    best.load(tmp_path / 'best.pth')
    for name, tensor in best.denoiser.network.state_dict().items():
        assert torch.equal(tensor, model.denoiser.network.state_dict()[name]), name


def test_a_warm_restart_refuses_weights_of_another_network(data_folder, tmp_path):
    Model(widths=(8, 16)).save(tmp_path / 'other.pth')
    settings, _ = train.parse_settings(['--data', str(data_folder), '--run', str(tmp_path / 'r'),
                                        '--epochs', '1', '--widths', '8,8',
                                        '--init', str(tmp_path / 'other.pth')])
    with pytest.raises(ValueError, match='holds the network'):
        train.train_run(settings, train.load_pairs(data_folder), tmp_path / 'r')


def test_a_mixture_s_pairs_take_the_loss_their_family_needs(data_folder, tmp_path):
    names = ['pixelation', 'gaussian', 'poisson-gaussian', 'impulses']
    index = torch.arange(64, dtype=torch.uint8) % 4
    torch.save({'families': names, 'index': index}, data_folder / 'train_families.pt')
    settings = settings_for(data_folder, tmp_path / 'run')
    robust = train.robust_pairs(data_folder, 40, settings)
    assert torch.equal(robust, index[:40] != 0)
    assert train.robust_pairs(data_folder, 40, {**settings, 'family_losses': False}) is None
    assert train.robust_pairs(data_folder, 40, {**settings, 'clean_targets': True}) is None
    (data_folder / 'train_families.pt').unlink()
    assert train.robust_pairs(data_folder, 40, settings) is None
    log, _ = train.train_run(settings_for(data_folder, tmp_path / 'plain', epochs=1),
                             train.load_pairs(data_folder), tmp_path / 'plain')
    assert log['settings']['family_losses']
