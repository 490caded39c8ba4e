"""LALM.from_pretrained as Hugging Face users call it: a folder or a hub id, with dtype and device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lalm import LALM


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, tiny_model_module: LALM) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "tiny-lalm"
    tiny_model_module.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model_module(tiny_config) -> LALM:
    return LALM(tiny_config.model)


def llm_dtypes(model: LALM) -> set[torch.dtype]:
    return {p.dtype for p in model.llm.parameters()}


def test_folder_with_dtype_and_device(saved: Path, tiny_model_module: LALM) -> None:
    model = LALM.from_pretrained(saved, dtype=torch.bfloat16, device="cpu")
    assert llm_dtypes(model) == {torch.bfloat16} and model.device.type == "cpu"
    assert model.config.llm.dtype == "bfloat16"
    for key, value in tiny_model_module.trained_state_dict().items():
        assert torch.equal(model.trained_state_dict()[key], value), key
    assert llm_dtypes(LALM.from_pretrained(saved, dtype="float32")) == {torch.float32}


def test_hub_id_fetches_only_the_checkpoint_files(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id: str, **kwargs: object) -> str:
        calls.append((repo_id, kwargs))
        return str(saved)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = LALM.from_pretrained("someone/tiny-lalm", revision="v1")
    assert isinstance(model, LALM)
    (repo, kwargs), = calls
    assert repo == "someone/tiny-lalm" and kwargs["revision"] == "v1"
    assert set(kwargs["allow_patterns"]) == {"config.yaml", "trained.safetensors", "base_models.json"}


def test_unreachable_hub_id_and_missing_folder_name_what_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(repo_id: str, **kwargs: object) -> str:
        raise LocalEntryNotFoundError("offline and not in the cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(FileNotFoundError, match="someone/tiny-lalm: no local folder of that name"):
        LALM.from_pretrained("someone/tiny-lalm")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        LALM.from_pretrained("/no/such/checkpoint")
