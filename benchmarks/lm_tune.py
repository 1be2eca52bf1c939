"""Tune the domain language model's fusion on the dev split: order, weight, bonus, lexicon.

    .venv/bin/python benchmarks/lm_tune.py [--model CKPT] [--corpus DIR] [--limit N]
        [--orders 5,7] [--weights 0.2,0.3] [--bonuses 0.2,0.4] [--lexicons 0,4] [--beam 4]
        [--json]

For each n-gram order a :class:`model.lm.CharLM` is trained on the corpus's ``train.jsonl``
texts; then every (weight, bonus, lexicon penalty) combination decodes the first ``--limit`` dev
utterances with beam search and shallow fusion (:class:`model.lm.Fusion`), and the WER (all,
and of sentences from templates held out of training) is printed, with the baseline without a
language model first. Pick the best row and build the shipped model with it (``zeroskip lm
--order .. --weight .. --bonus .. --lexicon ..``). The test split is never used here, so the
accuracy table's test WER stays an unbiased figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers")


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default.ckpt", metavar="CKPT")
    ap.add_argument("--corpus", default="build/corpus/main", metavar="DIR",
                    help="corpus with train.jsonl (the LM's texts) and dev.jsonl")
    ap.add_argument("--limit", type=int, default=400, metavar="N", help="dev utterances (400)")
    ap.add_argument("--orders", type=_ints, default=[5], metavar="LIST")
    ap.add_argument("--weights", type=_floats, default=[0.2, 0.3], metavar="LIST")
    ap.add_argument("--bonuses", type=_floats, default=[0.2], metavar="LIST")
    ap.add_argument("--lexicons", type=_floats, default=[0.0], metavar="LIST",
                    help="lexicon penalties (0: off)")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="one JSON object per result line")
    args = ap.parse_args(argv)

    import torch

    from model.audio import load_audio
    from model.checkpoint import CheckpointError, load
    from model.corpus import CorpusError, read_manifest
    from model.decode import beam_search
    from model.evaluate import error_rates
    from model.frontend import features
    from model.lm import CharLM, LMError

    torch.set_num_threads(args.threads)
    corpus = Path(args.corpus)
    try:
        model = load(args.model).model.eval()
        texts = [e["text"] for e in read_manifest(corpus / "train.jsonl")]
        dev = read_manifest(corpus / "dev.jsonl")[:args.limit]
    except (CheckpointError, CorpusError, FileNotFoundError) as e:
        print(f"lm_tune: error: {e}", file=sys.stderr)
        return 2
    feats = [features(torch.from_numpy(load_audio(e["audio"]))) for e in dev]
    refs = [e["text"] for e in dev]
    held = [i for i, e in enumerate(dev) if e.get("heldout")]

    def score(fusion):
        t0 = time.perf_counter()
        hyps = [beam_search(model, f, beam=args.beam, nbest=1, fusion=fusion)[0][0]
                for f in feats]
        return (error_rates(refs, hyps)["wer"],
                error_rates([refs[i] for i in held], [hyps[i] for i in held])["wer"]
                if held else None, time.perf_counter() - t0)

    def report(**r):
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            h = "—" if r["wer_held_out"] is None else f"{100 * r['wer_held_out']:.2f} %"
            print(f"order {r['order'] or '-':>2}  weight {r['weight']:<5g} bonus {r['bonus']:<5g}"
                  f" lexicon {r['lexicon']:<5g}  WER {100 * r['wer']:.2f} %  held-out {h}  "
                  f"({r['seconds']:.0f} s)", flush=True)

    wer, wh, sec = score(None)
    report(order=None, weight=0.0, bonus=0.0, lexicon=0.0, wer=wer, wer_held_out=wh, seconds=sec,
           utterances=len(dev))
    for order in args.orders:
        try:
            lm = CharLM.train(texts, order=order)
            for w in args.weights:
                for b in args.bonuses:
                    for x in args.lexicons:
                        wer, wh, sec = score(lm.fusion(w, b, x))
                        report(order=order, weight=w, bonus=b, lexicon=x, wer=wer,
                               wer_held_out=wh, seconds=sec, utterances=len(dev))
        except LMError as e:
            print(f"lm_tune: error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
