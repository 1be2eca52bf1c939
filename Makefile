# Everything sets itself up on first use: the venv, the Python packages, and (as root, with apt)
# Icarus Verilog, GTKWave and liblz4-dev for FST waves.
PY      := .venv/bin/python
STAMP   := .venv/.installed
APT_PKGS := iverilog liblz4-dev gtkwave

.PHONY: demo test bench clean setup examples model model-all accuracy fp32-more default-more lm

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "apt-get install$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "warning: could not install$$missing; tests that need them will skip"; fi; \
	else echo "not root or no apt: not installing$(APT_PKGS); tests that need them will skip"; fi
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(STAMP)

# The demo: an example utterance through the cycle-accurate accelerator on Verilator, every value
# checked against the integer reference. Until the trained default model exists (make model), a
# seeded random model of the same shape stands in (its transcript is noise; the checks and the
# figures are real).
DEMO_WAV  := examples/01-weather.wav
RANDOM_CKPT := build/bench/utterance/random-default-q4-s80.ckpt

demo: $(STAMP)
	@if [ -f models/default.ckpt ]; then \
	  .venv/bin/zeroskip simulate $(DEMO_WAV) --simulator verilator; \
	else \
	  echo "models/default.ckpt is not trained yet (make model): a random model of the same shape"; \
	  echo "(default preset, 4-bit, 80 % sparse) stands in; its transcript is noise, the checks are real"; \
	  $(PY) -c "from pathlib import Path; from benchmarks.utterance import random_model; random_model(Path('$(RANDOM_CKPT)'))" && \
	  .venv/bin/zeroskip simulate $(DEMO_WAV) --simulator verilator --model $(RANDOM_CKPT); \
	fi

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q

# -- the speech model (issue 3): corpus -> fp32 -> fine-tuned QAT / pruned variants ----------
# Every step resumes where it stopped (rerun the same target); each training run leaves
# CKPT, CKPT.last (resumable state) and CKPT.png (curves) under build/models/. One core each:
# about 20 min per fp32 epoch on the 20 h training split.
# Two corpora from the same seed and split ownership (their dev and test utterances agree):
# MAIN_CORPUS (20 h) holds the test split of the accuracy table and the LM's texts; CORPUS
# (25 h) trains: the same kind of sentences plus 20 % random word sequences from the training
# vocabulary, which with dropout keeps the model from leaning on memorized templates (README,
# "Regularization experiments").
ZS        := .venv/bin/zeroskip
MAIN_CORPUS := build/corpus/main
CORPUS    := build/corpus/words
MODELS    := build/models
FP32_EPOCHS := 12
FT_EPOCHS := 4
DROPOUT   := 0.2
TRAIN     := $(ZS) train --corpus $(CORPUS) --dev-limit 400 --threads 1 --no-progress \
             --dropout $(DROPOUT)
# The shipped default's last stage (and `make default-more`): 4-bit QAT held at 80 % sparsity,
# no dropout (the last --dropout wins), lr 5e-4.
POLISH    := --w-bits 4 --sparsity 0.8 --lr 5e-4 --dropout 0

examples: $(STAMP)
	$(ZS) corpus --examples 8 --out examples

build/corpus/main/corpus.json: | $(STAMP)
	$(ZS) corpus --hours 20 --out build/corpus/main

build/corpus/words/corpus.json: | $(STAMP)
	$(ZS) corpus --hours 25 --word-sequences 0.2 --out build/corpus/words

# The fp32 base model is committed (models/fp32.ckpt, 8 MB) once trained, so that the fine-tuned
# variants and the accuracy table can be rebuilt without the hours of fp32 training: this step
# copies it (RETRAIN_FP32=1 trains one from scratch instead). `make fp32-more` trains it further:
# a warm restart from the committed weights planned over FP32_MORE epochs and stopped after
# FP32_STOP of them (the schedule cut short), keeping the result if its dev WER is lower. The
# committed model is the first one trained from scratch (12 epochs on MAIN_CORPUS, no dropout),
# then `make fp32-more` as it stands.
FP32_MORE := 10
FP32_STOP := 4
# FP32_BASE names another base to fine-tune from, e.g. to build every row from a candidate
# base in a directory of its own before committing it: `make -j2 MODELS=build/models-next
# FP32_BASE=build/models/fp32-more.ckpt build/models-next/default.done ...`.
FP32_BASE := models/fp32.ckpt
$(MODELS)/fp32.done: $(CORPUS)/corpus.json
	@mkdir -p $(MODELS)
	@if [ -f $(FP32_BASE) ] && [ -z "$(RETRAIN_FP32)" ]; then \
	  echo "fp32: $(FP32_BASE) (RETRAIN_FP32=1 trains one from scratch)"; \
	  cp $(FP32_BASE) $(MODELS)/fp32.ckpt; \
	else \
	  $(TRAIN) --out $(MODELS)/fp32.ckpt --epochs $(FP32_EPOCHS) --ctc-weight 0.3; \
	fi && touch $@

fp32-more: $(CORPUS)/corpus.json
	$(TRAIN) --out $(MODELS)/fp32-more.ckpt --init models/fp32.ckpt --epochs $(FP32_MORE) \
	  --stop-after-epoch $(FP32_STOP) --ctc-weight 0.3 --lr 1e-3
	$(PY) -m model.checkpoint keep-better $(MODELS)/fp32-more.ckpt models/fp32.ckpt

# `make default-more DEFAULT_MORE=N` trains the shipped default N more epochs as its last stage
# was trained (4-bit QAT at its 80 % sparsity, pruning continuing from its masks so that no
# pruned weight regrows; no dropout, lr 5e-4) and keeps the result if its dev WER is lower. An
# interrupted run resumes; a finished one is not repeated: delete $(MODELS)/default-more.ckpt.last
# to train on from the model it made.
DEFAULT_MORE := 2
default-more: $(CORPUS)/corpus.json
	$(TRAIN) --out $(MODELS)/default-more.ckpt --init models/default.ckpt $(POLISH) \
	  --epochs $(DEFAULT_MORE)
	$(PY) -m model.checkpoint keep-better $(MODELS)/default-more.ckpt models/default.ckpt

$(MODELS)/qat8.done $(MODELS)/qat4.done: $(MODELS)/qat%.done: $(MODELS)/fp32.done
	$(TRAIN) --out $(MODELS)/qat$*.ckpt --init $(MODELS)/fp32.ckpt --w-bits $* \
	  --epochs $(FT_EPOCHS) && touch $@

$(MODELS)/qat4-s%.done: $(MODELS)/fp32.done
	$(TRAIN) --out $(MODELS)/qat4-s$*.ckpt --init $(MODELS)/fp32.ckpt --w-bits 4 \
	  --sparsity 0.$* --epochs $(FT_EPOCHS) && touch $@

# The shipped default: 4-bit QAT, 80 % gradual sparsity, fine-tuned from the fp32 model: the
# qat4-s80 row (FT_EPOCHS with dropout, the cubic pruning ramp), then three polish stages of
# DEFAULT_POLISH epochs each without dropout at lr 5e-4, a third of the first stage's peak
# (pruning continues from its masks at 80 %; the learning rate restarts between the stages).
# Dev WER 25.71 % after qat4-s80, then 25.33 / 24.34 / 23.77 % after the polish stages.
DEFAULT_POLISH := 2
$(MODELS)/default.done: $(MODELS)/qat4-s80.done
	$(TRAIN) --out $(MODELS)/default-polish1.ckpt --init $(MODELS)/qat4-s80.ckpt $(POLISH) \
	  --epochs $(DEFAULT_POLISH)
	$(TRAIN) --out $(MODELS)/default-polish2.ckpt --init $(MODELS)/default-polish1.ckpt $(POLISH) \
	  --epochs $(DEFAULT_POLISH)
	$(TRAIN) --out $(MODELS)/default.ckpt --init $(MODELS)/default-polish2.ckpt $(POLISH) \
	  --epochs $(DEFAULT_POLISH) && touch $@

model: $(MODELS)/default.done
	mkdir -p models && cp $(MODELS)/default.ckpt models/default.ckpt

model-all: model $(MODELS)/qat8.done $(MODELS)/qat4.done $(MODELS)/qat4-s50.done \
           $(MODELS)/qat4-s90.done

# The domain character language model fused into the beam search (committed: models/lm.json.gz,
# ~220 KB), from the training split's transcripts, with their words as its lexicon; order,
# weight, bonus and lexicon penalty (off) default to model/lm.py's (tuned on the dev split with
# benchmarks/lm_tune.py).
lm: $(MAIN_CORPUS)/corpus.json
	$(ZS) lm --corpus $(MAIN_CORPUS) --out models/lm.json.gz

# The README's accuracy table (every variant above, post-training baselines, PocketSphinx).
accuracy: $(STAMP) $(MAIN_CORPUS)/corpus.json
	$(PY) benchmarks/accuracy.py --readme

bench: $(STAMP)
	$(PY) benchmarks/matvec.py
	$(PY) benchmarks/ceiling.py
	$(PY) benchmarks/utterance.py $$([ -f models/default.ckpt ] || echo --random-model)
	$(PY) benchmarks/decode_threads.py

clean:
	rm -rf build
