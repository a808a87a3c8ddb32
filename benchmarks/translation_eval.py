"""Translation quality per backend on benchmarks/data/translation_eval.tsv.

Reports, for each backend and for the dev / held-out test splits: keyword recall (share of
the reference's content words found in the output; case and a plural "s" ignored), chrF
(sacrebleu), share of outputs with Indonesian words left untranslated, and ms per prompt.
The glossary was tuned on dev rows only; test rows (every third) are held out.

    python benchmarks/translation_eval.py [--backends glossary,none,marian] [--show-misses]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DATA = ROOT / "benchmarks" / "data" / "translation_eval.tsv"
STOP = set(
    "a an the of in on at to for with from by as and or is are be it its this that into onto over under "
    "while during after before".split()
)


def load(path: Path = DATA) -> list[tuple[str, str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        split, src, ref = line.split("\t")
        rows.append((split, src, ref))
    return rows


def _norm(word: str) -> str:
    w = word.lower()
    if len(w) > 3 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("es") and w[-3] in "sxz":
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def content_words(text: str) -> list[str]:
    return [_norm(w) for w in re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*", text.lower()) if w not in STOP]


def keyword_recall(output: str, reference: str) -> float:
    ref = content_words(reference)
    if not ref:
        return 1.0
    out = set(content_words(output))
    return sum(1 for w in ref if w in out) / len(ref)


def evaluate(backend: str, rows: list[tuple[str, str, str]], show_misses: bool = False) -> dict[str, dict[str, float]]:
    import sacrebleu

    from gambarkan.prompt.language import indonesian_leftovers
    from gambarkan.prompt.translate import TranslationCache, get_backend, translate_prompt
    import gambarkan.prompt.translate as tr

    if backend in ("marian", "nllb"):
        from gambarkan.prompt.backends import marian, nllb

        if not {"marian": marian, "nllb": nllb}[backend].weights_available():
            raise RuntimeError("weights not downloaded here")
    translate_prompt("kucing hitam, cinematic lighting, xyzzy plugh", "glossary")  # word lists + lingua, untimed
    if backend not in ("none",):
        get_backend(backend).translate(["kucing"], ["id"])  # load once, outside the timing
    results: dict[str, dict[str, float]] = {}
    for split in ("dev", "test", "all"):
        subset = [r for r in rows if split == "all" or r[0] == split]
        outs, recalls, left, times = [], [], 0, []
        for _, src, ref in subset:
            tr._CACHES.clear()  # time real translations, not cache hits
            t0 = time.perf_counter()
            out = translate_prompt(src, backend).english
            times.append((time.perf_counter() - t0) * 1000)
            outs.append(out)
            recalls.append(keyword_recall(out, ref))
            leftovers = indonesian_leftovers(out)
            left += bool(leftovers)
            if show_misses and split == "dev" and (recalls[-1] < 1 or leftovers):
                print(f"  [{recalls[-1]:.2f}] {src}\n      -> {out}\n      == {ref}  {leftovers or ''}")
        chrf = sacrebleu.corpus_chrf(outs, [[r for _, _, r in subset]]).score
        results[split] = {
            "n": len(subset),
            "recall": statistics.mean(recalls),
            "chrf": chrf,
            "leftover": left / len(subset),
            "ms": statistics.mean(times),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="glossary,none")
    parser.add_argument("--show-misses", action="store_true", help="print dev prompts the glossary did not fully get")
    args = parser.parse_args(argv)
    rows = load()
    print(f"{len(rows)} prompts ({sum(r[0] == 'test' for r in rows)} held out)")
    print(f"{'backend':10} {'split':5} {'n':>4} {'recall':>7} {'chrF':>6} {'leftover':>9} {'ms/prompt':>10}")
    for backend in args.backends.split(","):
        try:
            res = evaluate(backend, rows, args.show_misses)
        except Exception as exc:  # e.g. marian weights not downloaded
            print(f"{backend:10} unavailable: {exc}")
            continue
        for split, r in res.items():
            print(f"{backend:10} {split:5} {r['n']:4d} {r['recall']:7.3f} {r['chrf']:6.1f} {r['leftover']:8.1%} {r['ms']:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
