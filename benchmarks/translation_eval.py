"""Translation quality per backend on the evaluation sets in benchmarks/data/.

Sets: ``casual`` (benchmarks/data/casual_id.tsv, issue 20: chat spellings, slang, typos,
booru tags, regional lines ... with key words, split dev/heldout, reported per class),
``old`` (benchmarks/data/translation_eval.tsv, split dev/test) and ``sample`` (the public
sample, /work/shared/prompts/id-en-sample.tsv or tests/prompt/id-en-sample.tsv).

Per split (and per class for ``casual``): key-word recall, chrF (sacrebleu), share of
prompts with Indonesian left over, prompts whose English phrases were altered, prompts
whose A1111 syntax was damaged, and ms per prompt. The casual held-out split is only
printed with ``--heldout`` (it is measured once, at the end of tuning).

    python benchmarks/translation_eval.py [--sets casual,old,sample] [--backends glossary,none]
                                          [--show-misses] [--heldout]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DATA = ROOT / "benchmarks" / "data" / "translation_eval.tsv"
CASUAL = ROOT / "benchmarks" / "data" / "casual_id.tsv"
SAMPLES = (Path("/work/shared/prompts/id-en-sample.tsv"), ROOT / "tests" / "prompt" / "id-en-sample.tsv")
STOP = set(
    "a an the of in on at to for with from by as and or is are be it its this that into onto over under "
    "while during after before".split()
)


@dataclass(frozen=True)
class Row:
    split: str
    cls: str
    source: str
    reference: str
    keywords: tuple[tuple[str, ...], ...] = ()  # each key word with its accepted alternatives


def load(path: Path = DATA) -> list[Row]:
    """The old set: split<TAB>indonesian<TAB>reference."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        split, src, ref = line.split("\t")
        rows.append(Row(split, "all", src, ref))
    return rows


def load_casual(path: Path = CASUAL) -> list[Row]:
    """The casual set: split<TAB>class<TAB>indonesian<TAB>reference<TAB>keywords."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        split, cls, src, ref, kw = line.split("\t")
        keywords = tuple(tuple(a.strip() for a in k.split("/")) for k in kw.split("|") if k.strip())
        rows.append(Row(split, cls, src, ref, keywords))
    return rows


def load_sample() -> list[Row]:
    path = next((p for p in SAMPLES if p.exists()), None)
    if path is None:
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        src, ref = line.split("\t")[:2]
        rows.append(Row("dev", "all", src, ref))
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


def _tokens(text: str) -> list[str]:
    return [_norm(w) for w in re.findall(r"[a-z0-9]+(?:['][a-z0-9]+)*", text.lower())]


def content_words(text: str) -> list[str]:
    return [w for w in _tokens(text) if w not in STOP]


def keyword_recall(output: str, reference: str) -> float:
    """Share of the reference's content words found in the output (the old sets)."""
    ref = content_words(reference)
    if not ref:
        return 1.0
    out = set(content_words(output))
    return sum(1 for w in ref if w in out) / len(ref)


def _has(tokens: list[str], phrase: str) -> bool:
    want = _tokens(phrase)
    n = len(want)
    return any(tokens[i : i + n] == want for i in range(len(tokens) - n + 1))


def key_recall(output: str, keywords: tuple[tuple[str, ...], ...]) -> float:
    """Share of key words (any alternative) present in the output as whole words."""
    if not keywords:
        return 1.0
    toks = _tokens(output)
    return sum(1 for alts in keywords if any(_has(toks, a) for a in alts)) / len(keywords)


def leftover(source: str, output: str, reference: str) -> list[str]:
    """Indonesian left in the output: flagged by the detector, or copied from the source but not in the reference."""
    from gambarkan.prompt.language import indonesian_leftovers, words

    ref = {w.lower() for w in words(reference)}
    out_words = {w.lower() for w in words(output)}
    copied = [w for w in words(source) if len(w) > 2 and w.lower() in out_words and w.lower() not in ref]
    flagged = [w for w in indonesian_leftovers(output) if w.lower() not in ref]
    return sorted(set(flagged) | {w.lower() for w in copied})


def english_altered(source: str, output: str, reference: str) -> bool:
    """A phrase kept verbatim by the reference (English, tags) that the output does not keep."""
    from gambarkan.prompt.syntax import text_segments

    ref_phrases = set(text_segments(reference))
    out_phrases = set(text_segments(output))
    return any(p in ref_phrases and p not in out_phrases and _english_phrase(p) for p in text_segments(source))


def _english_phrase(phrase: str) -> bool:
    """A phrase kept verbatim by the reference is English unless all its words are Indonesian-only
    (a culture word the reference chose to keep, like "baju kurung"); booru tags are always English."""
    from gambarkan.prompt.language import is_indonesian_word, kept_words, words
    from gambarkan.prompt.normalize import booru_tags

    if phrase.lower() in booru_tags():
        return True
    ws = words(phrase)
    return not ws or not all(is_indonesian_word(w) or w.lower() in kept_words() for w in ws)


def skeleton(text: str) -> str:
    from gambarkan.prompt.syntax import replace_text_segments, text_segments

    return replace_text_segments(text, ["\x00"] * len(text_segments(text)))


def syntax_damaged(source: str, output: str) -> bool:
    try:
        return skeleton(source) != skeleton(output)
    except Exception:  # noqa: BLE001 - an output the parser rejects is damaged
        return True


def evaluate(backend: str, rows: list[Row], by: str, show_misses: bool = False) -> dict[str, dict[str, float]]:
    """Figures per group (``by`` = "split" or "class"), plus "all"."""
    import sacrebleu

    import gambarkan.prompt.translate as tr
    from gambarkan.prompt.translate import get_backend, translate_prompt

    if backend in ("marian", "nllb"):
        from gambarkan.prompt.backends import marian, nllb

        if not {"marian": marian, "nllb": nllb}[backend].weights_available():
            raise RuntimeError("weights not downloaded here")
    translate_prompt("kucing hitam, cinematic lighting, xyzzy plugh", "glossary")  # word lists + lingua, untimed
    if backend not in ("none", "auto"):
        get_backend(backend).translate(["kucing"], ["id"])  # load once, outside the timing
    per: dict[str, list[tuple[Row, str, float]]] = {}
    for row in rows:
        tr._CACHES.clear()  # time real translations, not cache hits
        t0 = time.perf_counter()
        out = translate_prompt(row.source, backend).english
        ms = (time.perf_counter() - t0) * 1000
        key = getattr(row, by)
        per.setdefault(key, []).append((row, out, ms))
        per.setdefault("all", []).append((row, out, ms))
    results: dict[str, dict[str, float]] = {}
    for group, items in per.items():
        recalls, left, alt, dmg = [], 0, 0, 0
        for row, out, _ in items:
            r = key_recall(out, row.keywords) if row.keywords else keyword_recall(out, row.reference)
            recalls.append(r)
            lo = leftover(row.source, out, row.reference)
            left += bool(lo)
            a = english_altered(row.source, out, row.reference)
            alt += a
            d = syntax_damaged(row.source, out)
            dmg += d
            if show_misses and group != "all" and row.split != "heldout" and (r < 1 or lo or a or d):
                flags = " ".join(x for x, on in (("ENGLISH-ALTERED", a), ("SYNTAX-DAMAGED", d)) if on)
                print(f"  [{row.cls} {r:.2f}] {row.source}\n      -> {out}\n      == {row.reference}  {lo or ''} {flags}")
        chrf = sacrebleu.corpus_chrf([o for _, o, _ in items], [[r.reference for r, _, _ in items]]).score
        results[group] = {
            "n": len(items),
            "recall": statistics.mean(recalls),
            "chrf": chrf,
            "leftover": left / len(items),
            "altered": alt,
            "damaged": dmg,
            "ms": statistics.mean(ms for _, _, ms in items),
        }
    return results


def _print(backend: str, name: str, res: dict[str, dict[str, float]]) -> None:
    for group in sorted(res, key=lambda g: (g == "all", g)):
        r = res[group]
        print(
            f"{backend:9} {name:7} {group:17} {int(r['n']):4d} {r['recall']:7.3f} {r['chrf']:6.1f} "
            f"{r['leftover']:8.1%} {int(r['altered']):8d} {int(r['damaged']):8d} {r['ms']:9.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="glossary,none")
    parser.add_argument("--sets", default="casual,old,sample")
    parser.add_argument("--show-misses", action="store_true", help="print dev prompts not fully right")
    parser.add_argument("--heldout", action="store_true", help="also measure the casual held-out split (once, at the end)")
    args = parser.parse_args(argv)
    print(f"{'backend':9} {'set':7} {'group':17} {'n':>4} {'recall':>7} {'chrF':>6} {'leftover':>8} {'altered':>8} {'damaged':>8} {'ms/prompt':>9}")
    for backend in args.backends.split(","):
        for name in args.sets.split(","):
            try:
                if name == "casual":
                    rows = load_casual()
                    dev = [r for r in rows if r.split == "dev"]
                    _print(backend, "casual", {"dev:" + k: v for k, v in evaluate(backend, dev, "cls", args.show_misses).items()})
                    if args.heldout:
                        held = [r for r in rows if r.split == "heldout"]
                        _print(backend, "casual", {"held:" + k: v for k, v in evaluate(backend, held, "cls").items()})
                elif name == "old":
                    _print(backend, "old", evaluate(backend, load(), "split", args.show_misses))
                elif name == "sample":
                    rows = load_sample()
                    if rows:
                        _print(backend, "sample", evaluate(backend, rows, "split", args.show_misses))
            except Exception as exc:  # e.g. marian weights not downloaded
                print(f"{backend:9} {name:7} unavailable: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
