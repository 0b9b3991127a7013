"""Test vectors of fmeval-scoring's classification, ROUGE, Porter stemmer and perturbations,
computed by the reference implementations themselves: NLTK 3.9.1's PorterStemmer, rouge_score
0.1.2 (as HF evaluate calls it), scikit-learn 1.9.1 (as fmeval calls it), numpy 2.4.6 and
fmeval 1.0.3's own perturbation and label-conversion code (read from FMEVAL_SRC, an unpacked
`pip download fmeval==1.0.3 --no-deps` wheel's `fmeval` directory, so Ray is not needed).

    pip install nltk==3.9.1 rouge_score==0.1.2 scikit-learn==1.9.1 numpy==2.4.6
    FMEVAL_SRC=.../fmeval python gen_fmeval_extras.py

Word list for the stemmer: words of Python's standard library sources plus suffix
combinations; it rewrites the files beside it.
"""
import os, re, json, glob, random, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nltk.stem.porter import PorterStemmer
from rouge_score import rouge_scorer
import gen_fmeval_perturb as pert
OUT = os.path.dirname(os.path.abspath(__file__))
FMEVAL = os.environ['FMEVAL_SRC']
st = PorterStemmer()
# --- porter word list
words = set()
for f in glob.glob('/usr/lib/python3.11/*.py')[:120]:
    for w in re.findall(r'[a-z]+', open(f, errors='ignore').read().lower()):
        if 3 < len(w) < 20: words.add(w)
sfx = "ational tional enci anci izer bli abli alli entli eli ousli ization ation ator alism iveness fulness ousness aliti iviti biliti fulli logi icate ative alize iciti ical ful ness al ance ence er ic able ible ant ement ment ent sion tion ou ism ate iti ous ive ize ies ied sses ss s eed ed ing y e ll at bl iz".split()
stems = "relat condit valen hesit digit conform radic differ vietnam analog sensit formal sensi operat hope feud pass agre plaster bled motor sing conflat troubl siz hop tann fall hiss fizz fail fil happ sk adjust depend adopt goodn boy cr spy tr d l t fl".split()
for s in stems:
    for x in sfx: words.add(s + x)
for w in "sky skies dying lying tying news innings inning outings outing cannings canning howe proceed exceed succeed ties dies lies died tied cries cried generalli fulli apologi analogi electricali".split(): words.add(w)
words = sorted(w for w in words if len(w) > 3)
random.seed(1); random.shuffle(words); words = sorted(words[:4000] + [w for w in words if w in ("skies","dying","lying","tying","news","innings","inning","outings","outing","cannings","canning","howe","proceed","exceed","succeed")])
words = sorted(set(words))
with open(os.path.join(OUT, 'porter.tsv'),'w') as f:
    f.write("# word\tNLTK 3.9.1 PorterStemmer().stem(word) (NLTK_EXTENSIONS), as rouge_score 0.1.2 calls it\n")
    for w in words: f.write(f"{w}\t{st.stem(w)}\n")
print(len(words))
# --- rouge pairs
sc = rouge_scorer.RougeScorer(['rouge1','rouge2','rougeL'], use_stemmer=True)
vocab = "the a cat cats sat sitting mat on dogs running runs ran quickly quick brown fox jumps jumped over lazy dog generalization relational hopeful Paris France 1973 October café naïve STRAẞE \u212aelvin İstanbul , . ! ? — - ' \" ( ) 10 3.5 x".split()
random.seed(7)
pairs = [("The cat sat on the mat.", "the cats were sitting on the mat"), ("raining cats", "It is raining cats and dogs"), ("", ""), ("", "a"), ("...", "!!!"), ("a", "a"), ("the the the", "the the"), ("Café naïve", "caf na ve")]
for _ in range(300):
    a = " ".join(random.choice(vocab) for _ in range(random.randint(0, 25)))
    b = " ".join(random.choice(vocab) for _ in range(random.randint(0, 25)))
    pairs.append((a, b))
with open(os.path.join(OUT, 'rouge.jsonl'),'w') as f:
    for out, tgt in pairs:
        s = sc.score(tgt, out)  # score(target, prediction)
        f.write(json.dumps({"model_output": out, "target": tgt, "rouge1": s['rouge1'].fmeasure, "rouge2": s['rouge2'].fmeasure, "rougeL": s['rougeL'].fmeasure}, ensure_ascii=False) + "\n")
# --- perturbations
texts = ["A quick brown fox jumps over the lazy dog 10 times.", "", "a", "Hello World", "Straße İstanbul KELVIN \u212a ohm \u2126 ǅ ẞ ﬀ", "a\tb\nc\u00a0d\u3000e\x1cf  g", "👍🏽 ok, qwerty-ASDF [p]", "What is the capital of France? Answer in one word.", " ".join(random.choice(vocab) for _ in range(100)), "ßßßßßßßßßßßßßßßßßßßßßß"]
res = {}
for k in ['butter_finger','random_upper_case','whitespace_add_remove']:
    p = pert.make(k)
    res[k] = [p.perturb(t) for t in texts]
json.dump({"seed": 5, "texts": texts, "perturbed": res}, open(os.path.join(OUT, 'perturbations.json'),'w'), ensure_ascii=False, indent=0)
# long text: tail-shuffle branch (N > 10000) and Floyd at N = 10000
long = {}
for n in (10000, 10007):
    p = pert.make('random_upper_case')
    t = "a" * n
    outs = p.perturb(t)
    long[str(n)] = [[i for i, c in enumerate(o) if c == 'A'][:50] + [sum(i for i, c in enumerate(o) if c == 'A')] for o in outs]
json.dump(long, open(os.path.join(OUT, 'upper_long.json'),'w'))
# --- classification dataset scores (scikit-learn, as fmeval calls it)
from sklearn.metrics import balanced_accuracy_score, precision_score, recall_score
import warnings; warnings.filterwarnings('ignore')
random.seed(11)
rows = []
for case in range(60):
    n_labels = random.randint(1, 14)
    labels = [f"l{i}" for i in range(n_labels)] + ["Positive", "positive"]
    n = random.randint(1, 90)
    y_true = [random.choice(labels) for _ in range(n)]
    y_pred = [random.choice(labels + ["unknown"]) if random.random() < 0.6 else t for t in y_true]
    row = {"y_true": y_true, "y_pred": y_pred,
           "classification_accuracy_score": float(np.mean([int(a == b) for a, b in zip(y_true, y_pred)])),
           "balanced_accuracy_score": float(balanced_accuracy_score(y_true, y_pred))}
    for avg in ("micro", "macro", "weighted"):
        row[f"precision_{avg}"] = float(precision_score(y_true, y_pred, average=avg))
        row[f"recall_{avg}"] = float(recall_score(y_true, y_pred, average=avg))
    rows.append(row)
with open(os.path.join(OUT, 'classification.jsonl'), 'w') as f:
    for row in rows: f.write(json.dumps(row) + "\n")

# --- fmeval's convert_model_output_to_label itself
src = open(FMEVAL + '/eval_algorithms/classification_accuracy.py').read()
start = src.index('def convert_model_output_to_label'); end = src.index('class ClassificationAccuracyScores')
cns = {'List': list, 'UNKNOWN_LABEL': 'unknown'}
exec(src[start:end], cns)
convert = cns['convert_model_output_to_label']
random.seed(13)
pieces = ["positive", "Positive", "NEGATIVE", "negative.", "neutral", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\x1c", "\u200b", "is", "the answer is", "\u212aids", "kids", "İ", "i\u0307", "ΣΑΣ", "σας", "(positive)", "unknown", "ß", "SS"]
label_sets = [["positive", "negative", "neutral"], ["Positive", " Negative "], ["kids", "ss"], ["σας", "i\u0307"], ["unknown", "positive"]]
with open(os.path.join(OUT, 'labels.jsonl'), 'w') as f:
    for case in range(300):
        labels = random.choice(label_sets)
        output = "".join(random.choice(pieces) + random.choice(["", " ", "\t"]) for _ in range(random.randint(0, 5)))
        f.write(json.dumps({"model_output": output, "labels": labels, "predicted": convert(output, labels)}, ensure_ascii=False) + "\n")
