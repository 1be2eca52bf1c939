"""The baseline a user would otherwise pick: PocketSphinx with a domain n-gram language model.

PocketSphinx (PyPI ``pocketsphinx``) ships a US-English continuous acoustic model and the CMU
pronouncing dictionary. :class:`PocketSphinxBaseline` builds a trigram ARPA language model from
the *training* texts of the corpus with ``pocketsphinx.lm.ArpaBoLM`` (Witten-Bell-style discount
mass 0.5, its default), so the baseline knows the domain's phrases exactly as the RNN-T's
training data does, and decodes each utterance as one whole utterance (``full_utt``).

Words that the CMU dictionary does not know (rare names) cannot be produced by PocketSphinx;
that is part of what it costs to use it, and is counted as errors like any other.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

__all__ = ["PocketSphinxBaseline"]


class PocketSphinxBaseline:
    """PocketSphinx's en-us acoustic model with an n-gram LM built from ``texts``.

    Parameters
    ----------
    texts : iterable of str
        Normalized training sentences (lowercase words separated by spaces).
    workdir : path
        Where the ARPA file is written (``domain.lm``).
    """

    def __init__(self, texts, workdir):
        from pocketsphinx import Decoder, get_model_path
        from pocketsphinx.lm import ArpaBoLM

        texts = [t.strip() for t in texts if t.strip()]
        if not texts:
            raise ValueError("PocketSphinxBaseline: no training texts to build the language model")
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        lm = ArpaBoLM(text="\n".join(texts), add_start=True)
        lm.logfile = io.StringIO()   # ArpaBoLM reports progress on stdout otherwise
        lm.compute()
        self.lm_path = workdir / "domain.lm"
        lm.write_file(str(self.lm_path))
        model = Path(get_model_path())
        self.decoder = Decoder(hmm=str(model / "en-us" / "en-us"), lm=str(self.lm_path),
                               dict=str(model / "en-us" / "cmudict-en-us.dict"),
                               samprate=16000, logfn=os.devnull)
        self.vocabulary = sorted({w for t in texts for w in t.split()})
        self.oov = sorted(w for w in self.vocabulary if self.decoder.lookup_word(w) is None)

    def transcribe(self, audio: np.ndarray) -> str:
        """Decode one utterance (float samples in [-1, 1], 16 kHz mono) to lowercase words."""
        pcm = (np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0) * 32767.0).round()
        pcm = pcm.astype("<i2").tobytes()
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm, no_search=False, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        if hyp is None:
            return ""
        words = [w for w in hyp.hypstr.split() if not w.startswith("<") and not w.startswith("[")]
        # Alternative pronunciations come back as word(2); keep the word.
        return " ".join(w.split("(")[0] for w in words).lower()
