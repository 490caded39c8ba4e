"""lalm.azeros_import on a synthetic AZeroS release: the released key names, folder layout and shapes at
tiny size. The kit model it writes must answer as a reference built from the same tensors the way
AudenAI/Auden's examples/azeros runs them (written here from that code's behaviour, not copied)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from lalm import LALM
from lalm.azeros_import import AzerosLayoutError, import_azeros
from lalm.encoders.zipformer import ZipformerEncoder
from lalm.llm import byte_chatml_tokenizer

ROOT = Path(__file__).resolve().parents[1]
ZIPFORMER = {
    "downsampling_factor": [1, 2],
    "num_encoder_layers": [1, 1],
    "encoder_dim": [32, 48],
    "feedforward_dim": [64, 96],
    "num_heads": [2, 2],
    "query_head_dim": [8],
    "value_head_dim": [8],
    "pos_head_dim": [4],
    "pos_dim": 16,
    "encoder_unmasked_dim": [32, 32],
    "cnn_module_kernel": [7, 5],
}
LLM = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "initializer_range": 0.2,
}
DS = 4
AUDIO = "<|AUDIO|>"
WRAPPED = f"<audio><meta>{AUDIO}</meta><text>{AUDIO}</text></audio>"


def release(folder: Path) -> Path:
    """A tiny AZeroS release: config.json, projector weights, two Auden encoder folders, llm/, tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = byte_chatml_tokenizer()
    tokenizer.save_pretrained(folder)
    llm_config = AutoConfig.for_model(
        "qwen2",
        vocab_size=len(tokenizer) + 8,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **LLM,
    )
    torch.manual_seed(2)
    AutoModelForCausalLM.from_config(llm_config).save_pretrained(folder / "llm")
    weights = {}
    for seed, module in enumerate(("speech_encoder", "paraling_encoder")):
        encoder = ZipformerEncoder(random_config=ZIPFORMER, seed=seed + 1)
        (folder / module).mkdir()
        (folder / module / "config.json").write_text(json.dumps({"model_type": "zipformer", **ZIPFORMER}))
        save_file(
            {k: v.contiguous() for k, v in encoder.state_dict().items()},
            folder / module / "pretrained.safetensors",
        )
        gen = torch.Generator().manual_seed(10 + seed)
        width, hidden = 48 * DS, LLM["hidden_size"]
        for name, shape in (
            ("linear1.weight", (hidden, width)),
            ("linear1.bias", (hidden,)),
            ("linear2.weight", (hidden, hidden)),
            ("linear2.bias", (hidden,)),
        ):
            weights[f"{module}_projector.{name}"] = 0.2 * torch.randn(*shape, generator=gen)
    save_file(weights, folder / "pretrained.safetensors")
    config = {
        "model_type": "azeros",
        "use_flash_attn": False,
        "exclude_from_checkpoint": ["llm", "speech_encoder", "paraling_encoder"],
        "paraling_encoder_projector_ds_rate": DS,
        "speech_encoder_projector_ds_rate": DS,
        "speech_encoder_config": {"model_type": "zipformer", **ZIPFORMER},
        "paraling_encoder_config": {"model_type": "zipformer", **ZIPFORMER},
        "llm_config": llm_config.to_dict(),
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


class Reference(nn.Module):
    """AZeroS inference as the released code runs it, from the release's own tensors."""

    def __init__(self, folder: Path):
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM, AutoTokenizer

        super().__init__()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.tokenizer.add_special_tokens({"additional_special_tokens": [AUDIO]})
        self.audio_id = self.tokenizer.convert_tokens_to_ids(AUDIO)
        self.llm = AutoModelForCausalLM.from_pretrained(folder / "llm", dtype=torch.float32).eval()
        self.encoders = {
            m: ZipformerEncoder(path=str(folder / m)) for m in ("speech_encoder", "paraling_encoder")
        }
        weights = load_file(folder / "pretrained.safetensors")
        self.projectors = {
            m: {k.split(".", 1)[1]: v for k, v in weights.items() if k.startswith(f"{m}_projector.")}
            for m in self.encoders
        }

    def project(self, module: str, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack DS frames (the batch's trailing frames that fill no group are dropped), then
        Linear-ReLU-Linear."""
        w = self.projectors[module]
        b, t, d = x.shape
        x = x[:, : t - t % DS].reshape(b, t // DS, d * DS)
        x = (
            torch.relu(x @ w["linear1.weight"].T + w["linear1.bias"]) @ w["linear2.weight"].T
            + w["linear2.bias"]
        )
        return x, lens // DS

    def inputs(self, waves: list[torch.Tensor], questions: list[str]):
        from lalm.model import pad_waveforms

        batch, lengths = pad_waveforms(waves)
        feats = {m: self.project(m, *enc(batch, lengths)) for m, enc in self.encoders.items()}
        # One audio token run per branch, paralinguistic first, as the wrapped placeholder orders them.
        order = [(i, m) for i in range(len(waves)) for m in ("paraling_encoder", "speech_encoder")]
        texts = []
        for i, question in enumerate(questions):
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": f"{WRAPPED} {question}"}],
                tokenize=False,
                add_generation_prompt=True,
            )
            for m in ("paraling_encoder", "speech_encoder"):
                text = text.replace(AUDIO, "\0" * int(feats[m][1][i]), 1)
            texts.append(text.replace("\0", AUDIO))
        ids = [self.tokenizer.encode(t, add_special_tokens=False) for t in texts]
        width = max(map(len, ids))
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in ids])  # left padding, for generation
        embeds = self.llm.get_input_embeddings()(input_ids)
        audio = torch.cat([feats[m][0][i, : feats[m][1][i]] for i, m in order])
        embeds = embeds.masked_scatter((input_ids == self.audio_id)[..., None], audio)
        return embeds, input_ids != pad

    @torch.no_grad()
    def logits(self, waves, questions) -> torch.Tensor:
        embeds, mask = self.inputs(waves, questions)
        return self.llm(inputs_embeds=embeds, attention_mask=mask.long()).logits[:, -1]

    @torch.no_grad()
    def generate(self, waves, questions, max_new_tokens: int = 6) -> list[str]:
        embeds, mask = self.inputs(waves, questions)
        out = self.llm.generate(
            inputs_embeds=embeds,
            attention_mask=mask.long(),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        return self.tokenizer.batch_decode(out, skip_special_tokens=True)


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    return release(tmp_path_factory.mktemp("azeros"))


def clips() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return [0.1 * torch.randn(n, generator=gen) for n in (28_600, 12_000)]  # 42 and 17 frames: partial groups


def kit_logits(model: LALM, waves, questions) -> torch.Tensor:
    conversations = [
        [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": f" {q}"}]}]
        for q in questions
    ]
    with torch.no_grad():
        batch = model.prepare(conversations, [[w] for w in waves])
        embeds = model.embed(batch["input_ids"], batch["slots"], batch["audio"])
        return model.llm(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits[:, -1]


def test_the_imported_model_answers_as_the_reference(released, tmp_path):
    out = import_azeros(str(released), tmp_path / "kit", dtype="float32")
    model = LALM.from_pretrained(out)
    reference = Reference(released)
    questions = ["What is said?", "Who speaks?"]
    waves = clips()
    torch.testing.assert_close(
        kit_logits(model, waves, questions), reference.logits(waves, questions), atol=1e-4, rtol=1e-4
    )
    conversations = [
        [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": f" {q}"}]}]
        for q in questions
    ]
    kit = model.generate_batch(conversations, [[w.numpy()] for w in waves], max_new_tokens=6)
    assert kit == reference.generate(waves, questions)
    # the parts: both encoders from the release's folders, projectors that drop a partial last group
    cfg = model.config
    assert [b.name for b in cfg.branches] == ["paralinguistic", "semantic"]
    assert cfg.branches[0].encoder.path == str((released / "paraling_encoder").resolve())
    assert cfg.branches[1].projector.options == {"k": 4, "hidden": 32, "drop_tail": True}
    assert cfg.prompt.layout == "<audio><meta>{paralinguistic}</meta><text>{semantic}</text></audio>"
    assert (out / "llm" / "config.json").is_symlink() and (out / "llm" / "tokenizer_config.json").is_symlink()
    assert model.processor.audio_positions(28_600) == {
        "paralinguistic": int(
            reference.project(
                "paraling_encoder", *reference.encoders["paraling_encoder"](*pad_one(waves[0]))
            )[1][0]
        ),
        "semantic": 10,
    }


def pad_one(wave: torch.Tensor):
    from lalm.model import pad_waveforms

    return pad_waveforms([wave])


def test_a_folder_that_is_not_the_release_fails_naming_what_is_missing(released, tmp_path):
    with pytest.raises(AzerosLayoutError, match="no config.json"):
        import_azeros(str(tmp_path), tmp_path / "out")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "azeros"}))
    save_file({"speech_encoder_projector.linear1.weight": torch.zeros(1)}, broken / "pretrained.safetensors")
    with pytest.raises(
        AzerosLayoutError,
        match="broken: the weight file lacks paraling_encoder_projector.linear1.weight.*"
        "speech_encoder_projector.linear1.bias",
    ):
        import_azeros(str(broken), tmp_path / "out")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lalm.azeros_import",
            "--checkpoint",
            str(broken),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2 and done.stderr.startswith("error:") and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_the_command_writes_a_checkpoint_the_kit_loads(released, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lalm.azeros_import",
            "--checkpoint",
            str(released),
            "--out",
            str(tmp_path / "kit"),
            "--dtype",
            "float32",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "kit checkpoint:" in done.stdout
    bases = json.loads((tmp_path / "kit" / "base_models.json").read_text())
    assert set(bases["encoders"]) == {"paralinguistic", "semantic"} and bases["llm"]["path"].endswith(
        "kit/llm"
    )
    reply = LALM.from_pretrained(tmp_path / "kit").generate(
        [np.zeros(8000, np.float32)], " hi", max_new_tokens=2
    )
    assert isinstance(reply, str)
