"""The overlay a Vosk model is loaded from: its files linked, dither and Vosk's own endpoints turned off."""
from __future__ import annotations

from pathlib import Path

from asr.kaldi_conf import OVERRIDES, overlay_dir, rewrite_conf


def test_an_option_the_file_sets_is_replaced_and_the_rest_kept() -> None:
    text = "--use-energy=false\n--dither=1.0\n# a comment\n--num-ceps=40\n"
    assert rewrite_conf(text, ("--dither=0",)) == "--use-energy=false\n# a comment\n--num-ceps=40\n--dither=0\n"
    assert rewrite_conf("", ("--dither=0",)) == "--dither=0\n"


def test_the_overlay_links_the_model_and_rewrites_only_the_conf_files_it_has(tmp_path: Path) -> None:
    model = tmp_path / "vosk-model-x"
    (model / "am").mkdir(parents=True)
    (model / "am" / "final.mdl").write_bytes(b"weights")
    (model / "conf").mkdir()
    (model / "conf" / "mfcc.conf").write_text("--use-energy=false\n--dither=1\n")
    (model / "conf" / "model.conf").write_text("--beam=10.0\n--endpoint.rule2.min-trailing-silence=0.5\n")
    (model / "conf" / "ivector.conf").write_text("--splice-config=conf/splice.conf\n")
    over = overlay_dir(model)
    assert over.name == "vosk-model-x" and overlay_dir(model) == over  # once per process
    assert (over / "am").is_symlink() and (over / "am" / "final.mdl").read_bytes() == b"weights"
    assert (over / "conf" / "mfcc.conf").read_text() == "--use-energy=false\n--dither=0\n"
    model_conf = (over / "conf" / "model.conf").read_text().splitlines()
    assert model_conf[:2] == ["--beam=10.0", "--endpoint.rule2.min-trailing-silence=0.5"]
    assert model_conf[2:] == list(OVERRIDES["model.conf"])
    assert (over / "conf" / "ivector.conf").read_text() == "--splice-config=conf/splice.conf\n"
    assert not (over / "conf" / "fbank.conf").exists()  # Vosk would take a new file for the features to use
    assert (model / "conf" / "mfcc.conf").read_text() == "--use-energy=false\n--dither=1\n"  # the model untouched
