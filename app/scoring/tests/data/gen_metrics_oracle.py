"""Writes metrics_oracle.jsonl: random (target, output) pairs scored by a stdlib-only Python port
of METRICS.md (fmeval 1.0.3's qa_accuracy and factual_knowledge rules), so the Rust metrics are
checked against Python's own str.lower/strip/split. Run: python3 gen_metrics_oracle.py"""
import json
import random
import string

PUNCT = set(string.punctuation)
WORDS = ["the", "a", "an", "The", "A", "Paris", "paris", "France", "New", "York", "city",
         "U.S.", "US", "non-combustion", "O\u2019Brien", "OBrien", "\u039f\u0394\u039f\u03a3",
         "\u03bf\u03b4\u03bf\u03c2", "\u0130stanbul", "Stra\u00dfe", "STRASSE", "8", "18", "cat",
         "concatenate", "yes", "YES!", "(magma", "and/or", "lava)", "\u00bfQu\u00e9?", "1973",
         "October", "caf\u00e9", "\u00c9COLE"]
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u200b", "\u3000", "\u001c", "\u001f",
              "\u0085", "\u2028", "\r\n", ",", ".", "-", "\ufeff", "\u202f"]


def normalize(text):
    text = text.lower()
    text = "".join(ch for ch in text if ch not in PUNCT)
    return " ".join(w for w in text.split(" ") if w != "" and w not in ["a", "an", "the"])


def precision_recall_f1(output, target):
    output_words = set(normalize(output.strip()).split())
    target_words = set(normalize(target.strip()).split())
    common = len(output_words & target_words)
    precision = common / len(output_words) if output_words else 0.0
    recall = common / len(target_words) if target_words else 0.0
    if not output_words or not target_words or precision == 0 or recall == 0:
        f1 = 0
    else:
        f1 = 1.0 / (0.5 / precision + 0.5 / recall)
    return precision, recall, float(f1)


def qa_scores(output, target):
    alternatives = target.split("<OR>")
    exact = max(float(output.strip() == alt.strip()) for alt in alternatives)
    quasi = max(float(normalize(output.strip()) == normalize(alt.strip())) for alt in alternatives)
    prf = [precision_recall_f1(output, alt) for alt in alternatives]
    return {
        "f1_score": max(x[2] for x in prf),
        "exact_match_score": exact,
        "quasi_exact_match_score": quasi,
        "precision_over_words": max(x[0] for x in prf),
        "recall_over_words": max(x[1] for x in prf),
    }


def factual_knowledge(output, target):
    return int(any(alt.lower() in output.lower() for alt in target.split("<OR>")))


def text(rng, max_words):
    pieces = []
    for _ in range(rng.randint(0, max_words)):
        pieces.append(rng.choice(WORDS))
        pieces.append(rng.choice(SEPARATORS))
    if pieces and rng.random() < 0.5:
        pieces.pop()
    return "".join(pieces)


def main():
    rng = random.Random(20240501)
    with open("metrics_oracle.jsonl", "w", encoding="utf-8", newline="\n") as out:
        for _ in range(500):
            n_alternatives = rng.choice([1, 1, 2, 3])
            target = "<OR>".join(text(rng, 4) for _ in range(n_alternatives))
            if rng.random() < 0.3:
                output = rng.choice(target.split("<OR>")) + text(rng, 2)
            else:
                output = text(rng, 8)
            row = {"target": target, "output": output, "qa_accuracy": qa_scores(output, target),
                   "factual_knowledge": factual_knowledge(output, target)}
            out.write(json.dumps(row, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
