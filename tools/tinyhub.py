"""Write a fake Hugging Face hub cache holding random-weight models in the real checkpoint formats.

The real, unpatched loaders (``MusicGen.get_pretrained``, ``MultiBandDiffusion.get_mbd_musicgen``,
``demucs.pretrained.get_model``) then run offline against it, which is what the tests and a machine without
GPU or network need::

    python -m tools.tinyhub DIR
    HF_HOME=DIR HF_HUB_OFFLINE=1 ./run.sh

Layout: ``DIR/hub/models--<org>--<name>/snapshots/<40 zeros>/<files>`` plus ``refs/main``.

Every repo is a tiny model by default (about 50 MB in all). :func:`write_musicgen_repo` can also write one
MusicGen repo with the real small/medium/large architecture (random weights) for benchmarks; those files are
as large as the released ones: the fp32 LM state is about 1.7 GB for small, 7.3 GB for medium and 13 GB for
large, plus a 236 MB codec, and writing one needs about as much RAM as its files.

Building an LM instantiates its conditioners, which load ``t5-base`` (and ``adefossez/HTDemucs`` for melody)
through the hub, so the process must already use this cache offline: set ``HF_HOME`` and ``HF_HUB_OFFLINE=1``
before huggingface_hub is imported. The CLI does that itself, which is also why torch, audiocraft and the
hub libraries are imported inside the functions here and never at module level.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Bump when the written files change, so caches built by an older recipe are rebuilt.
RECIPE_VERSION = 2
REVISION = "0" * 40
STAMP_NAME = "tinyhub.json"
SAMPLE_RATE = 32000
T5_REPO = "t5-base"
MBD_REPO = "facebook/multiband-diffusion"
HTDEMUCS_REPO = "adefossez/HTDemucs"
HTDEMUCS_SIGNATURE = "955717e8"

# repo id -> (stereo, melody); the names MusicGen.get_pretrained accepts.
MUSICGEN_REPOS: dict[str, tuple[bool, bool]] = {
    "facebook/musicgen-small": (False, False),
    "facebook/musicgen-medium": (False, False),
    "facebook/musicgen-large": (False, False),
    "facebook/musicgen-melody": (False, True),
    "facebook/musicgen-melody-large": (False, True),
    "facebook/musicgen-stereo-small": (True, False),
    "facebook/musicgen-stereo-medium": (True, False),
    "facebook/musicgen-stereo-large": (True, False),
    "facebook/musicgen-stereo-melody": (True, True),
    "facebook/musicgen-stereo-melody-large": (True, True),
}

# Transformer sizes: "tiny" for tests, the others are audiocraft's config/model/lm/model_scale values.
LM_SCALES: dict[str, dict[str, int]] = {
    "tiny": {"dim": 32, "num_heads": 2, "num_layers": 2, "hidden_scale": 2},
    "small": {"dim": 1024, "num_heads": 16, "num_layers": 24, "hidden_scale": 4},
    "medium": {"dim": 1536, "num_heads": 24, "num_layers": 48, "hidden_scale": 4},
    "large": {"dim": 2048, "num_heads": 32, "num_layers": 48, "hidden_scale": 4},
}

# SEANet sizes of the 32 kHz EnCodec: tiny for tests, otherwise encodec_large_nq4_s640 (MusicGen's codec).
_SEANET_SCALES: dict[str, dict[str, int]] = {
    "tiny": {"dimension": 16, "n_filters": 4, "lstm": 0},
    "real": {"dimension": 128, "n_filters": 64, "lstm": 2},
}


def build(hf_home: Path) -> Path:
    """Write every tiny repo the app can load into ``hf_home``, unless this recipe was already built there.

    Returns:
        ``hf_home``, for chaining.

    Raises:
        RuntimeError: if the process's hub cache is not ``hf_home`` or offline mode is off (see module doc).
    """
    hf_home = Path(hf_home)
    stamp = hf_home / STAMP_NAME
    if _read_stamp(stamp) == RECIPE_VERSION:
        logger.debug("tiny hub in %s is up to date", hf_home)
        return hf_home
    _require_offline_cache(hf_home)
    started = time.perf_counter()
    with _repeatable_torch():
        _write_t5(hf_home)
        _write_htdemucs(hf_home)
        for repo_id, (stereo, melody) in MUSICGEN_REPOS.items():
            write_musicgen_repo(hf_home, repo_id, stereo=stereo, melody=melody)
        _write_mbd(hf_home, codec_dim=_SEANET_SCALES["tiny"]["dimension"])
    # The stamp goes last: an interrupted build has none and is redone.
    stamp.write_text(json.dumps({"recipe": RECIPE_VERSION}))
    logger.info("built the tiny hub in %s in %.1f s", hf_home, time.perf_counter() - started)
    return hf_home


def musicgen_cfg(scale: str, *, stereo: bool = False, melody: bool = False) -> dict[str, Any]:
    """Return the plain-dict ``xp.cfg`` of a MusicGen LM, as audiocraft's training configs would produce it.

    Args:
        scale: "tiny" (test dims) or "small" / "medium" / "large" (the released transformer sizes).
        stereo: interleaved stereo codebooks (8 LM streams over a mono 4-codebook codec), as released.
        melody: add the ``chroma_stem`` ``self_wav`` conditioner and prepend fusing, as the melody releases.
    """
    n_q = 8 if stereo else 4
    cfg: dict[str, Any] = {
        "lm_model": "transformer_lm",
        "sample_rate": SAMPLE_RATE,
        "channels": 2 if stereo else 1,
        # Must exceed MusicGen's default extend_stride of 18 s, or the model refuses to construct.
        "dataset": {"segment_duration": 30},
        "codebooks_pattern": {
            "modeling": "delay",
            "delay": {
                "delays": [i // 2 for i in range(n_q)] if stereo else list(range(n_q)),
                "flatten_first": 0,
                "empty_initial": 0,
            },
        },
        "transformer_lm": {
            **LM_SCALES[scale],
            "n_q": n_q,
            "card": 2048,
            "dropout": 0.0,
            "emb_lr": None,
            "activation": "gelu",
            "norm_first": True,
            "bias_ff": False,
            "bias_attn": False,
            "bias_proj": False,
            "past_context": None,
            "causal": True,
            "custom": False,
            "memory_efficient": True,
            "attention_as_float32": False,
            "layer_scale": None,
            "positional_embedding": "sin",
            "xpos": False,
            "checkpointing": "none",
            "weight_init": "gaussian",
            "depthwise_init": "current",
            "zero_bias_init": True,
            "norm": "layer_norm",
            "cross_attention": False,
            "qk_layer_norm": False,
            "qk_layer_norm_cross": False,
            "attention_dropout": None,
            "kv_repeat": 1,
            "two_step_cfg": False,
        },
        "classifier_free_guidance": {"training_dropout": 0.2 if melody else 0.3, "inference_coef": 3.0},
        "attribute_dropout": {},
        "fuser": {
            "cross_attention_pos_emb": False,
            "cross_attention_pos_emb_scale": 1,
            "sum": [],
            "prepend": ["self_wav", "description"] if melody else [],
            "cross": [] if melody else ["description"],
            "input_interpolate": [],
        },
        "conditioners": {
            "description": {
                "model": "t5",
                "t5": {"name": T5_REPO, "finetune": False, "word_dropout": 0.3, "normalize_text": False},
            },
        },
    }
    if melody:
        cfg["conditioners"]["self_wav"] = {
            "model": "chroma_stem",
            "chroma_stem": {
                "sample_rate": SAMPLE_RATE,
                "n_chroma": 12,
                "radix2_exp": 14,
                "argmax": True,
                "match_len_on_eval": False,
                "eval_wavs": None,
                "n_eval_wavs": 100,
                "cache_path": None,
            },
        }
    if stereo:
        # genmodel wraps the mono codec in InterleaveStereoCompressionModel when this is on.
        cfg["interleave_stereo_codebooks"] = {"use": True, "per_timestep": False}
    return cfg


def write_musicgen_repo(
    hf_home: Path, repo_id: str, scale: str = "tiny", *, stereo: bool = False, melody: bool = False
) -> Path:
    """Write ``state_dict.bin`` (LM) and ``compression_state_dict.bin`` (codec) with random weights.

    Both files are ``torch.save``d dicts ``{"xp.cfg": <plain dict>, "best_state": <state dict>}``. Any scale
    other than "tiny" also gets the real EnCodec size. ``t5-base`` (and ``adefossez/HTDemucs`` for melody)
    must already be in the hub, which :func:`build` ensures.

    Returns:
        The snapshot folder that holds the two files.

    Raises:
        RuntimeError: if the process's hub cache is not ``hf_home`` or offline mode is off (see module doc).
    """
    _require_offline_cache(Path(hf_home))
    started = time.perf_counter()
    lm = _lm_package(musicgen_cfg(scale, stereo=stereo, melody=melody))
    codec = _codec_package("tiny" if scale == "tiny" else "real")
    folder = _save_torch_files(
        Path(hf_home), repo_id, {"state_dict.bin": lm, "compression_state_dict.bin": codec}
    )
    logger.debug("wrote %s (%s) in %.2f s", repo_id, scale, time.perf_counter() - started)
    return folder


@contextlib.contextmanager
def _repeatable_torch() -> Iterator[None]:
    """Build tiny models on one torch thread with a fixed seed, leaving the caller's settings as they were.

    One thread: their cost is per-op overhead, which extra threads multiply (measured on 2 busy cores:
    4 s with one thread, 26 s with two). A fixed seed: the same weights in every session, so test runs
    (and the levels of what the models generate) are repeatable.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            yield
    finally:
        torch.set_num_threads(previous)


def _read_stamp(stamp: Path) -> int | None:
    """Return the recipe version recorded by a finished build, or None when there is none."""
    try:
        return int(json.loads(stamp.read_text())["recipe"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _require_offline_cache(hf_home: Path) -> None:
    """Fail early unless hub lookups in this process resolve, offline, into ``hf_home``.

    Building an LM loads ``t5-base`` through the hub; from another cache it would load the wrong model, and
    online it could try to download the real one.
    """
    from huggingface_hub import constants

    if Path(constants.HF_HUB_CACHE).resolve() != (hf_home / "hub").resolve() or not constants.HF_HUB_OFFLINE:
        raise RuntimeError(
            f"set HF_HOME={hf_home} and HF_HUB_OFFLINE=1 before importing huggingface_hub "
            f"(this process uses {constants.HF_HUB_CACHE}, offline={constants.HF_HUB_OFFLINE})"
        )


def _snapshot(hf_home: Path, repo_id: str) -> Path:
    """Create a repo's snapshot folder and ``refs/main`` in the hub cache layout and return the folder."""
    repo_dir = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    folder = repo_dir / "snapshots" / REVISION
    folder.mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(REVISION)
    return folder


def _save_torch_files(hf_home: Path, repo_id: str, packages: dict[str, Any]) -> Path:
    """``torch.save`` each package under its file name in the repo's snapshot."""
    import torch

    folder = _snapshot(hf_home, repo_id)
    for name, package in packages.items():
        torch.save(package, folder / name)
    return folder


def _write_t5(hf_home: Path) -> None:
    """Write a tiny T5 encoder and tokenizer as ``t5-base``; audiocraft hard-codes its width, 768."""
    import string

    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    # A unigram vocabulary of single characters (plus word-initial letters) tokenizes any ASCII prompt.
    pieces = ["▁"] + list(string.ascii_letters + string.digits + string.punctuation)
    pieces += ["▁" + letter for letter in string.ascii_letters]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(piece, -1.0) for piece in pieces]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    config = T5Config(vocab_size=len(tokenizer), d_model=768, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    folder = _snapshot(hf_home, T5_REPO)
    tokenizer.save_pretrained(folder)
    T5EncoderModel(config).save_pretrained(folder)


def _write_htdemucs(hf_home: Path) -> None:
    """Write a tiny HTDemucs bag as demucs' own HF export does: a bag yaml plus one safetensors file."""
    from demucs.htdemucs import HTDemucs
    from safetensors.torch import save_file

    # Depth 3 and 1 s segments keep its attention short: 0.08 s per second of audio instead of 2.5 s with
    # depth 2 and 4 s segments, which would dominate every melody generation in the tests.
    kwargs = {
        "sources": ["drums", "bass", "other", "vocals"],
        "audio_channels": 2,
        "samplerate": 44100,
        "segment": 1,
        "channels": 4,
        "depth": 3,
        "nfft": 512,
        "t_layers": 1,
        "t_heads": 1,
        "t_hidden_scale": 1,
        "dconv_comp": 2,
        "bottom_channels": 0,
    }
    model = HTDemucs(**kwargs)
    folder = _snapshot(hf_home, HTDEMUCS_REPO)
    (folder / "htdemucs.yaml").write_text(f"models: ['{HTDEMUCS_SIGNATURE}']\n")
    metadata = {"klass": "demucs.htdemucs.HTDemucs", "args": "[]", "kwargs": json.dumps(kwargs)}
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, folder / f"{HTDEMUCS_SIGNATURE}.safetensors", metadata=metadata)


def _codec_cfg(size: str) -> dict[str, Any]:
    """Return the plain-dict ``xp.cfg`` of MusicGen's mono 32 kHz EnCodec (50 Hz, 4 codebooks of 2048)."""
    return {
        "compression_model": "encodec",
        "sample_rate": SAMPLE_RATE,
        "channels": 1,
        "encodec": {
            "autoencoder": "seanet",
            "quantizer": "rvq",
            "sample_rate": SAMPLE_RATE,
            "channels": 1,
            "causal": False,
            "renormalize": False,
        },
        "seanet": {
            **_SEANET_SCALES[size],
            "channels": 1,
            "causal": False,
            "n_residual_layers": 1,
            "ratios": [8, 5, 4, 4],
            "activation": "ELU",
            "activation_params": {"alpha": 1.0},
            "norm": "weight_norm",
            "norm_params": {},
            "kernel_size": 7,
            "residual_kernel_size": 3,
            "last_kernel_size": 7,
            "dilation_base": 2,
            "pad_mode": "constant",
            "true_skip": True,
            "compress": 2,
            "disable_norm_outer_blocks": 0,
            "decoder": {"trim_right_ratio": 1.0, "final_activation": None, "final_activation_params": None},
            "encoder": {},
        },
        "rvq": {
            "n_q": 4,
            "q_dropout": False,
            "bins": 2048,
            "decay": 0.99,
            # k-means init would leave the codebooks uninitialised until training data is seen.
            "kmeans_init": False,
            "kmeans_iters": 50,
            "threshold_ema_dead_code": 2,
            "orthogonal_reg_weight": 0.0,
            "orthogonal_reg_active_codes_only": False,
        },
    }


def _codec_package(size: str) -> dict[str, Any]:
    """Build a random codec with audiocraft's own builder and return its checkpoint dict."""
    from audiocraft.models import builders
    from omegaconf import OmegaConf

    cfg = _codec_cfg(size)
    model = builders.get_compression_model(OmegaConf.create({**cfg, "device": "cpu"}))
    return {"xp.cfg": cfg, "best_state": model.state_dict()}


def _lm_package(cfg: dict[str, Any]) -> dict[str, Any]:
    """Build a random LM with audiocraft's own builder (real weight init) and return its checkpoint dict."""
    from audiocraft.models import builders
    from omegaconf import OmegaConf

    model = builders.get_lm_model(OmegaConf.create({**cfg, "device": "cpu", "dtype": "float32"}))
    return {"xp.cfg": cfg, "best_state": model.state_dict()}


def _write_mbd(hf_home: Path, codec_dim: int) -> None:
    """Write ``mbd_musicgen_32khz.th``: two tiny diffusion bands conditioned on a ``codec_dim``-wide codec.

    Each band's ``cfg`` is an omegaconf ``DictConfig``, as in the released file, so loading it exercises the
    ``weights_only`` allow-list. The processors carry neutral statistics; fresh ones (count 0) produce NaN.
    """
    from audiocraft.models import builders
    from omegaconf import OmegaConf

    processor_bands = 8
    band_cfg = OmegaConf.create(
        {
            "channels": 1,
            "schedule": {
                "repartition": "power",
                "variable_step_batch": True,
                "beta_t0": 1.0e-5,
                "beta_t1": 2.9e-2,
                "beta_exp": 7.5,
                "num_steps": 1000,
                "variance": "beta",
                "clip": 5.0,
                "rescale": 1.0,
                "n_bands": None,
                "noise_scale": 1.0,
            },
            "diffusion_unet": {
                "hidden": 8,
                "depth": 2,
                "res_blocks": 1,
                "norm_groups": 4,
                "kernel": 8,
                "stride": 4,
                "growth": 4,
                "max_channels": 10_000,
                "dropout": 0.0,
                "emb_all_layers": True,
                "bilstm": False,
                "codec_dim": codec_dim,
                "transformer": False,
                "cross_attention": False,
            },
            "processor": {
                "name": "multi_band_processor",
                "use": True,
                "n_bands": processor_bands,
                "num_samples": 10_000,
                "power_std": 1.0,
            },
        }
    )
    package: dict[Any, Any] = {"sample_rate": SAMPLE_RATE, "n_bands": 2}
    for band in range(package["n_bands"]):
        model = builders.get_diffusion_model(band_cfg)
        processor = builders.get_processor(band_cfg.processor, sample_rate=SAMPLE_RATE)
        processor.counts.fill_(1)
        processor.sum_x.zero_()
        processor.sum_x2.fill_(1)
        processor.sum_target_x2.fill_(1)
        package[band] = {
            "cfg": band_cfg,
            "model_state": model.state_dict(),
            "processor_state": processor.state_dict(),
        }
    _save_torch_files(hf_home, MBD_REPO, {"mbd_musicgen_32khz.th": package})


def main(argv: list[str] | None = None) -> int:
    """Build a tiny hub in DIR (optionally one MusicGen repo at real size) and print how to use it."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.tinyhub",
        description="Write random-weight models into a Hugging Face cache folder so the UI runs offline.",
    )
    parser.add_argument("directory", type=Path, help="folder to use as HF_HOME (created if missing)")
    parser.add_argument(
        "--scale",
        choices=list(LM_SCALES),
        default="tiny",
        help="also write facebook/musicgen-<scale> with the real architecture and random weights "
        "(small: about 1.9 GB); it stays until DIR is deleted",
    )
    args = parser.parse_args(argv)
    hf_home: Path = args.directory.resolve()
    # The hub libraries read these once, when first imported, which happens below.
    os.environ["HF_HOME"] = str(hf_home)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.pop("AUDIOCRAFT_CACHE_DIR", None)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from audiocraft_webui import compat

    compat.install()
    build(hf_home)
    if args.scale != "tiny":
        write_musicgen_repo(hf_home, f"facebook/musicgen-{args.scale}", args.scale)
        if args.scale == "small":
            # MBD decodes with musicgen-small's codec, whose width just changed.
            _write_mbd(hf_home, codec_dim=_SEANET_SCALES["real"]["dimension"])
    print(f"HF_HOME={hf_home} HF_HUB_OFFLINE=1 ./run.sh")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
