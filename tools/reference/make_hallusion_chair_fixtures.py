"""Reference fixtures for the HallusionBench and CHAIR scorers, and the CHAIR rule data.

    python3 tools/reference/make_hallusion_chair_fixtures.py

Writes Tests/EvaluationTests/Fixtures/hallusionbench_{questions.jsonl,answers.jsonl,expected.json},
Tests/EvaluationTests/Fixtures/chair_{annotations.jsonl,answers.jsonl,expected.json} and
Sources/Evaluation/Resources/chair_rules.json. It READS Sources/Evaluation/Resources/coco_synonyms.txt (the
original data/synonyms.txt of LisaAnne/Hallucination, byte for byte; its SHA-256 is checked below).
No randomness: two runs give identical bytes.

Each rule is an independent re-implementation of one original rule, written after reading the original; each
function names the file it mirrors. The originals are not imported or copied, except the two libraries CHAIR
itself calls, which are imported from their PyPI packages (reference machines only, never CI):

    pip install nltk                    # nltk.word_tokenize (the original pins nltk==3.2.5)
    pip install --no-deps patternlite   # Pattern 3.6's pattern/text/en/inflect.py (the original pins pattern==3.6)
    # plus NLTK's English Punkt model ("punkt_tab/english" for nltk >= 3.8.2) in an nltk_data directory:
    # python3 -c "import nltk; nltk.download('punkt_tab')"

PyPI's "Pattern" name now holds an unrelated package; "patternlite" 3.6 is a stripped fork of Pattern 3.6 whose
singularize (and all the data it reads) is identical to clips/pattern's. Its pattern.text.en package __init__
loads WordNet, so inflect.py is loaded by file path. Pattern 2.6 differed only by three missing commas in
singularize's word lists (fixed before 3.6); that changes no word used here.

Sources mirrored:
  * HallusionBench: tianyi-lab/HallusionBench utils.py (get_eval_all, get_eval_fig, get_eval_pair_all,
    get_eval_pair_easy, get_eval_pair_hard, assign_correctness) and evaluation.py (the leaderboard).
  * Yes/no judge: open-compass/VLMEvalKit vlmeval/dataset/utils/yorn.py (YOrN_Extraction, Hallusion_rating),
    vlmeval/smp/misc.py (process_punctuation), vlmeval/dataset/image_yorn.py (score = answer == extracted).
    (There is no vlmeval/dataset/utils/hallusionbench.py or hb_scores in VLMEvalKit; Hallusion_rating is it.)
  * CHAIR: LisaAnne/Hallucination utils/chair.py (CHAIR.__init__, caption_to_words, get_annotations_from_segments,
    get_annotations_from_captions, compute_chair) + data/synonyms.txt; recall from shikiw/OPERA chair.py
    (a modified copy of the same file, which adds Recall; OPERA's copy also swaps singularize for a WordNet
    lemmatizer -- NOT followed here).
"""
import hashlib
import importlib.util
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "EvaluationTests", "Fixtures")
RESOURCES = os.path.join(ROOT, "Sources", "Evaluation", "Resources")
SYNONYMS_PATH = os.path.join(RESOURCES, "coco_synonyms.txt")
SYNONYMS_SHA256 = "b685537b36fe21b791c87151b96a991ceb582edff19f3da204dcc7a7905502f2"


def div(a, b):
    """a / b, or 0 where the harness would divide by zero (none does in these fixtures)."""
    return a / b if b else 0


# ============================================================================================================
# Rule H1: yes/no judge -- VLMEvalKit vlmeval/smp/misc.py process_punctuation + vlmeval/dataset/utils/yorn.py
#          YOrN_Extraction (the exact-matching judge; no LLM fallback).
# ============================================================================================================

# The same rule as make_eval_fixtures.py's (one implementation for both fixture sets).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_eval_fixtures import vlm_extract, vlm_parsed_name  # noqa: E402


def yorn_extraction(text):
    """yorn.py YOrN_Extraction as "yes" / "no" / "unknown"."""
    return vlm_parsed_name(vlm_extract(text))


def hb_correct(question, parsed):
    """image_yorn.py: score = (answer == extracted), answer 'Yes' for gt_answer '1' and 'No' for '0'; 'Unknown'
    is therefore always wrong. (The ORIGINAL HallusionBench assign_correctness counts an 'uncertain' GPT verdict
    as CORRECT for VS questions with figure_id '0' (no image); the yorn rule has no such case and we do not apply
    it, as the brief asks.)"""
    gt = "yes" if question["gt_answer"] == "1" else "no"
    return 1 if parsed == gt else 0


# ============================================================================================================
# Rule H2: aAcc -- HallusionBench utils.py get_eval_all (correct / total over questions; keys
#          category_subcategory_set_id_figure_id_question_id must be unique). Same as VLMEvalKit calc_aAcc.
# ============================================================================================================

def hb_aacc(rows):
    seen = set()
    for q, _ in rows:
        key = "_".join([q["category"], q["subcategory"], q["set_id"], q["figure_id"], q["question_id"]])
        assert key not in seen, key
        seen.add(key)
    return div(sum(c for _, c in rows), len(rows))


# ============================================================================================================
# Rule H3: fAcc -- HallusionBench utils.py get_eval_fig. Group by category_subcategory_set_id_figure_id,
#          SKIPPING VS questions with figure_id '0' (the no-image questions, visual_input '0'); VD figure '0'
#          (the original image) is kept. A figure counts iff all its questions are correct.
#          (VLMEvalKit's Hallusion_rating calc_fAcc differs: key l2-category_set_id_figure_id, no category, and
#          it does NOT skip the VS no-image questions.)
# ============================================================================================================

def hb_facc(rows):
    groups = {}
    for q, c in rows:
        if q["category"] == "VS" and q["figure_id"] == "0":
            continue
        key = "_".join([q["category"], q["subcategory"], q["set_id"], q["figure_id"]])
        groups.setdefault(key, []).append(c)
    return div(sum(1 for v in groups.values() if all(v)), len(groups))


# ============================================================================================================
# Rule H4: qAcc -- HallusionBench utils.py get_eval_pair_all. Group by category_subcategory_set_id_question_id
#          (ALL questions, the VS no-image one included); a "question pair" counts iff all are correct.
#          (VLMEvalKit calc_qAcc: key l2-category_set_id_question_id, without the category.)
# ============================================================================================================

def hb_qacc(rows):
    groups = {}
    for q, c in rows:
        key = "_".join([q["category"], q["subcategory"], q["set_id"], q["question_id"]])
        groups.setdefault(key, []).append(c)
    return div(sum(1 for v in groups.values() if all(v)), len(groups))


# ============================================================================================================
# Rule H5: splits -- HallusionBench utils.py get_eval_pair_easy / get_eval_pair_hard: easy = visual_input != '2'
#          (so the VS no-image questions, visual_input '0', are EASY), hard = visual_input == '2'; the subset is
#          filtered first, then grouped. NOTE: the original only computes question-PAIR accuracy on these
#          subsets, and evaluation.py's leaderboard labels them "easy aAcc" / "hard aAcc": the original's easy/hard
#          number is our easy.qAcc / hard.qAcc. aAcc and fAcc of a subset (with the H3 grouping) are ours.
#          Categories (VD / VS) are the same three metrics on the rows of one category, as evaluation.py does.
# ============================================================================================================

def hb_block(rows):
    return {"count": len(rows), "aAcc": hb_aacc(rows), "fAcc": hb_facc(rows), "qAcc": hb_qacc(rows)}


def hallusionbench_expected(questions, answers):
    assert len(questions) == len(answers)
    parsed = [yorn_extraction(a["text"]) for a in answers]
    rows = [(q, hb_correct(q, p)) for q, p in zip(questions, parsed)]
    return {
        "rule": "yorn",
        "overall": hb_block(rows),
        "easy": hb_block([r for r in rows if r[0]["visual_input"] != "2"]),
        "hard": hb_block([r for r in rows if r[0]["visual_input"] == "2"]),
        "categories": {c: hb_block([r for r in rows if r[0]["category"] == c]) for c in ("VD", "VS")},
        "parsed": parsed,
    }


def hb_question(category, subcategory, set_id, figure_id, question_id, question, gt):
    """One record in the official HallusionBench.json layout: VD figure '0' is the original image (visual_input
    '1'), other VD figures are edited ('2'); VS figure '0' has no image ('0', filename null), VS figure '1' the
    original ('1'), higher figures edited ('2')."""
    if category == "VD":
        visual_input = "1" if figure_id == "0" else "2"
    else:
        visual_input = {"0": "0", "1": "1"}.get(figure_id, "2")
    filename = None if visual_input == "0" else "./%s/%s/%s_%s.png" % (category, subcategory, set_id, figure_id)
    return {"category": category, "subcategory": subcategory, "visual_input": visual_input, "set_id": set_id,
            "figure_id": figure_id, "question_id": question_id, "question": question, "gt_answer": gt,
            "filename": filename}


# (category, subcategory, set_id, figure_id, question_id, question, gt_answer, model answer)
HB_ROWS = [
    ("VD", "illusion", "0", "0", "0", "Are the two horizontal lines the same length?", "1", "Yes."),
    ("VD", "illusion", "0", "0", "1", "Is the top line longer than the bottom line?", "0",
     "No, the top line is not longer."),
    ("VD", "illusion", "0", "1", "0", "Are the two horizontal lines the same length?", "0", "not sure"),
    ("VD", "illusion", "0", "1", "1", "Is the top line longer than the bottom line?", "1", "YES"),
    ("VD", "illusion", "1", "0", "0", "Are the two inner circles the same size?", "1", "Yes,the circles match."),
    ("VD", "illusion", "1", "1", "0", "Are the two inner circles the same size?", "0", "No.I think they differ"),
    ("VD", "illusion", "1", "2", "0", "Are the two inner circles the same size?", "0", "no."),
    ("VD", "math", "0", "0", "0", "Is angle A larger than angle B in the figure?", "0", ""),
    ("VD", "math", "0", "0", "1", "Is the triangle in the figure isosceles?", "1", "Yes: two sides are equal"),
    ("VD", "math", "0", "1", "0", "Is angle A larger than angle B in the figure?", "1", "The answer is: yes"),
    ("VD", "ocr", "2", "0", "0", "Does the sign in the image read STOP?", "1", "(Yes)"),
    ("VD", "ocr", "2", "0", "1", "Is the text on the sign written in blue?", "0",
     "No; the letters are white on red."),
    ("VD", "ocr", "2", "1", "0", "Does the sign in the image read STOP?", "0", "There is no sign of text."),
    ("VD", "ocr", "2", "1", "1", "Is the text on the sign written in blue?", "0", "yes/no"),
    ("VD", "ocr", "2", "2", "0", "Does the sign in the image read STOP?", "1", "Yes\nThe sign says STOP."),
    ("VD", "video", "0", "0", "0", "According to the image sequence, is the ball falling down?", "1",
     "Absolutely yes!"),
    ("VD", "video", "0", "0", "1", "Are the images in the correct order?", "0", "'No'"),
    ("VD", "video", "0", "1", "0", "According to the image sequence, is the ball falling down?", "0",
     "No" + "." * 40),
    ("VD", "figure", "0", "0", "0", "Is the animal in the picture a cat?", "1", "Yes and no"),
    ("VD", "figure", "0", "1", "0", "Is the animal in the picture a cat?", "0", "No!"),
    ("VS", "chart", "0", "0", "0", "Was China the largest exporter of steel in 2019?", "1", "Yes, it is."),
    ("VS", "chart", "0", "0", "1", "Did world steel exports fall between 2018 and 2019?", "0",
     "No. (It is yes in the chart.)"),
    ("VS", "chart", "0", "1", "0", "According to the chart, was China the largest exporter of steel in 2019?", "1",
     "Yes,it has 1,000 tonnes more"),
    ("VS", "chart", "0", "1", "1", "According to the chart, did world steel exports fall between 2018 and 2019?",
     "0", "No. The exports rose."),
    ("VS", "chart", "0", "2", "0", "According to the chart, was China the largest exporter of steel in 2019?", "0",
     "YES, NO"),
    ("VS", "chart", "0", "2", "1", "According to the chart, did world steel exports fall between 2018 and 2019?",
     "1", "Yes yes yes"),
    ("VS", "table", "1", "0", "0", "Is Mount Everest the tallest mountain on Earth?", "1", "nope"),
    ("VS", "table", "1", "1", "0", "According to the table, is Mount Everest the tallest mountain?", "1", "yes-ish"),
    ("VS", "table", "1", "2", "0", "According to the table, is Mount Everest the tallest mountain?", "0",
     "Not really."),
    ("VS", "map", "0", "0", "0", "Is Texas the largest state in the contiguous United States?", "1", "Yes..."),
    ("VS", "map", "0", "0", "1", "Does Texas border New Mexico?", "1", "Yes\u2014definitely"),
    ("VS", "map", "0", "1", "0", "According to the map, is Texas the largest state shown?", "1", "In 2019, yes."),
    ("VS", "map", "0", "1", "1", "According to the map, does Texas border New Mexico?", "1", "\"Yes\""),
    ("VS", "map", "0", "2", "0", "According to the map, is Texas the largest state shown?", "0", "no_way"),
    ("VS", "map", "0", "2", "1", "According to the map, does Texas border New Mexico?", "0", "Yes.No"),
    ("VS", "ocr", "2", "0", "0", "Was the novel Dune written by Frank Herbert?", "1", "Y"),
    ("VS", "ocr", "2", "1", "0", "According to the cover, was the novel Dune written by Frank Herbert?", "1",
     "It is 3.5 times longer, yes"),
    ("VS", "ocr", "2", "2", "0", "According to the cover, was the novel Dune written by Frank Herbert?", "0",
     "no  "),
    # Two more rows of an earlier set, out of file order: grouping must go by key, not by adjacency.
    ("VS", "table", "1", "0", "1", "Is K2 the second tallest mountain on Earth?", "1", "Yes"),
    ("VS", "table", "1", "1", "1", "According to the table, is K2 the second tallest mountain?", "1",
     "I cannot tell."),
]


def hallusionbench_fixtures():
    questions = [hb_question(*row[:7]) for row in HB_ROWS]
    answers = [{"text": row[7]} for row in HB_ROWS]
    return questions, answers


# ============================================================================================================
# CHAIR dependencies: the two libraries chair.py calls.
# ============================================================================================================

def load_word_tokenize():
    """nltk.word_tokenize, as chair.py calls it (needs the Punkt English model)."""
    try:
        import nltk
    except ImportError:
        sys.exit("needs nltk: pip install nltk")
    try:
        nltk.word_tokenize("a dog. a cat.")
    except LookupError as error:
        sys.exit("needs NLTK's English Punkt model (punkt_tab for nltk >= 3.8.2): %s" % error)
    return nltk.word_tokenize


def load_singularize():
    """pattern.en.singularize of Pattern 3.6, from patternlite's pattern/text/en/inflect.py, loaded by path so
    that pattern.text.en's __init__ (which downloads WordNet) does not run."""
    spec = importlib.util.find_spec("pattern")
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = os.path.join(list(spec.submodule_search_locations)[0], "text", "en", "inflect.py")
    if path is None or not os.path.exists(path):
        sys.exit("needs Pattern 3.6's inflect module: pip install --no-deps patternlite")
    module_spec = importlib.util.spec_from_file_location("pattern_en_inflect", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


# ============================================================================================================
# Rule C1: synonyms -- chair.py CHAIR.__init__: lines = file.readlines(); each line .strip().split(', ').
#          mscoco_objects = every entry of every line (duplicates kept; entries keep inner/leading spaces, so
#          ' motor bike' and ' cheesecake' -- written after a double space in the file -- can never match a word);
#          inverse_synonym_dict[entry] = the line's first entry (later lines would win; no entry repeats across
#          lines). Case is kept ('iPhone' never matches a lowercased caption).
# ============================================================================================================

def read_synonyms():
    with open(SYNONYMS_PATH, "rb") as f:
        raw = f.read()
    if hashlib.sha256(raw).hexdigest() != SYNONYMS_SHA256:
        sys.exit("%s is not the original data/synonyms.txt" % SYNONYMS_PATH)
    lines = [line.strip().split(", ") for line in raw.decode("utf-8").splitlines(True)]
    objects = set()
    inverse = {}
    for line in lines:
        objects.update(line)
        for entry in line:
            inverse[entry] = line[0]
    return lines, objects, inverse


# ============================================================================================================
# Rule C2: double words -- chair.py CHAIR.__init__ (coco_double_words, animal_words, vehicle_words, overrides).
# ============================================================================================================

COCO_DOUBLE_WORDS = ["motor bike", "motor cycle", "air plane", "traffic light", "street light", "traffic signal",
                     "stop light", "fire hydrant", "stop sign", "parking meter", "suit case", "sports ball",
                     "baseball bat", "baseball glove", "tennis racket", "wine glass", "hot dog", "cell phone",
                     "mobile phone", "teddy bear", "hair drier", "potted plant", "bow tie", "laptop computer",
                     "stove top oven", "hot dog", "teddy bear", "home plate", "train track"]
ANIMAL_WORDS = ["bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "animal",
                "cub"]
VEHICLE_WORDS = ["jet", "train"]


def double_word_dict():
    """Insertion order of the original dict: each listed double word maps to itself; 'baby X' / 'adult X' -> X
    for the animal words; 'passenger X' -> X for the vehicle words; then 'bow tie' -> 'tie' (overrides),
    'toilet seat' -> 'toilet', 'wine glas' -> 'wine glass' (singularize('glass') == 'glas').
    Targets that are not synonyms ('home plate', 'train track', 'motor bike', 'animal', 'cub') are later
    dropped like any other non-object word; 'stove top oven' has three words and never matches a pair."""
    d = {}
    for w in COCO_DOUBLE_WORDS:
        d[w] = w
    for w in ANIMAL_WORDS:
        d["baby %s" % w] = w
        d["adult %s" % w] = w
    for w in VEHICLE_WORDS:
        d["passenger %s" % w] = w
    d["bow tie"] = "tie"
    d["toilet seat"] = "toilet"
    d["wine glas"] = "wine glass"
    return d


# ============================================================================================================
# Rule C3: caption -> objects -- chair.py caption_to_words.
# ============================================================================================================

class Chair:
    def __init__(self, word_tokenize, singularize):
        self.word_tokenize = word_tokenize
        self.singularize = singularize
        self.synonyms, self.objects, self.inverse = read_synonyms()
        self.double_words = double_word_dict()

    def caption_to_words(self, caption):
        """1. tokens = nltk.word_tokenize(caption.lower()); 2. each token singularized (Pattern);
        3. left to right, if 'tok[i] tok[i+1]' (joined by one space) is a key of the double-word dict, emit its
        value and skip both, else emit tok[i]; 4. if the literal words 'toilet' and 'seat' are both present,
        drop every 'seat'; 5. keep the words that are synonym entries, in order with repeats; node words =
        their canonical names. Returns (tokens, words after step 3, object words, node words)."""
        tokens = self.word_tokenize(caption.lower())
        words = [self.singularize(w) for w in tokens]
        merged = []
        i = 0
        while i < len(words):
            pair = " ".join(words[i:i + 2])
            if pair in self.double_words:
                merged.append(self.double_words[pair])
                i += 2
            else:
                merged.append(words[i])
                i += 1
        words = merged
        if "toilet" in words and "seat" in words:
            words = [w for w in words if w != "seat"]
        words = [w for w in words if w in self.objects]
        return tokens, merged, words, [self.inverse[w] for w in words]

    # ========================================================================================================
    # Rule C4: ground truth -- chair.py get_annotations_from_segments + get_annotations_from_captions: the set
    #          of inverse_synonym_dict[category name] of every instance annotation of the image, united with the
    #          node words of every ground-truth caption of the image (caption_to_words, all rules above).
    # ========================================================================================================

    def ground_truth(self, annotation):
        gt = set(self.inverse[name] for name in annotation["objects"])
        for caption in annotation["captions"]:
            gt.update(self.caption_to_words(caption)[3])
        return gt

    # ========================================================================================================
    # Rule C5: CHAIRs / CHAIRi -- chair.py compute_chair. Per caption, every node word (repeats included) not
    #          in the image's ground-truth set is one hallucinated mention. CHAIRs = captions with >= 1
    #          hallucinated mention / all captions (an empty caption counts in the denominator);
    #          CHAIRi = hallucinated mentions / all object mentions, pooled over captions (the original divides
    #          by zero when no caption mentions any object).
    # Rule C6: recall -- shikiw/OPERA chair.py (absent from the original): per caption the SET of mentioned
    #          node words that are in the ground truth; recall = sum |that set| / sum |ground-truth set|, pooled
    #          over captions (an image's ground truth counts once per caption of it).
    # ========================================================================================================

    def compute(self, annotations, answers):
        by_id = {a["image_id"]: a for a in annotations}
        num_caps = hallucinated_caps = hallucinated_words = coco_words = 0
        recalled = gt_total = 0
        per_image = []
        for answer in answers:
            gt = self.ground_truth(by_id[answer["image_id"]])
            tokens, merged, words, nodes = self.caption_to_words(answer["caption"])
            hallucinated = [n for n in nodes if n not in gt]
            coco_words += len(nodes)
            hallucinated_words += len(hallucinated)
            num_caps += 1
            hallucinated_caps += 1 if hallucinated else 0
            recalled += len(set(n for n in nodes if n in gt))
            gt_total += len(gt)
            per_image.append({"image_id": answer["image_id"], "mentioned": nodes, "hallucinated": hallucinated,
                              "ground_truth": sorted(gt), "tokens": tokens, "words": merged})
        return {"CHAIRs": div(hallucinated_caps, num_caps), "CHAIRi": div(hallucinated_words, coco_words),
                "recall": div(recalled, gt_total), "count": num_caps, "per_image": per_image}


# ============================================================================================================
# CHAIR fixtures
# ============================================================================================================

CHAIR_IMAGES = [
    # (image_id, instance category names, ground-truth captions, generated caption)
    (42, ["person", "knife", "oven", "sink", "bottle", "bottle", "dining table"],
     ["A woman cutting vegetables with a knife in a kitchen.",
      "A kitchen with a stove, a sink and bottles on the counter."],
     "Two women are slicing bread with knives next to the sink. Glasses, mice and a cell phone sit on the table."),
    (73, ["bus", "car", "car", "person", "traffic light", "stop sign"],
     ["A red bus stops at a traffic light.", "Cars and buses wait near a stop sign."],
     "A bus and two buses drive past the fire hydrant; an automobile waits at the stop sign while people cross."),
    (95, ["toilet", "sink"],
     ["A white toilet next to a sink in a small bathroom."],
     "A toilet seat is up and the seat of the toilet is cracked. A chair stands by the sink."),
    (110, ["couch", "tv", "remote", "cat"],
     ["A cat sleeping on a couch in front of a television.", "A living room with a sofa and a TV."],
     "A kitten naps on the sofa; the TV is off and a remote lies on the seat."),
    (128, ["elephant", "elephant", "giraffe", "person"],
     ["A baby elephant walks beside its mother.", "Elephants and a giraffe at the zoo."],
     "A baby elephant and an adult giraffe stand near the baby zebra's pen, and a baby cries."),
    (200, ["dog"],
     ["A dog lying on the floor."],
     ""),
    (215, ["horse", "person"],
     ["A woman riding a horse on a beach."],
     "A Woman rides a HORSE along the beach."),
    (300, ["hot dog", "sandwich", "cup", "dining table"],
     ["A hot dog and a sandwich on a plate.", "Lunch with a hot dog, a burger and a cup of coffee."],
     "Two hot dogs, a hot-dog bun, a cheesecake and a teddy bear sit on the table next to the wine glasses."),
    (350, ["person", "person", "skis", "snowboard"],
     ["Skiers on a snowy slope with skis and a snowboard."],
     "Men, women and children carry skis; a snowboarder's snowboard leans on a motor bike."),
    (400, ["sheep", "dog", "cow"],
     ["A dog herding sheep in a field.", "Sheep and cows on a farm."],
     "The dog's puppy isn't herding the sheep; it can't see the passenger train or the sheepdog."),
    (450, ["laptop", "mouse", "keyboard", "cell phone", "tv", "book"],
     ["A laptop and a computer mouse on a desk.", "A desk with a keyboard, a monitor and a cell phone."],
     "A laptop computer,a mouse(wireless) and a mobile phone.The tv shows a dog.cat video; \"books\": 3."),
    (500, ["bicycle", "motorcycle", "person", "handbag"],
     ["A man on a motorbike next to a bicycle.", "A cyclist and a motorcycle on the road."],
     "A MAN in a bow tie rides a motorbike; two ties, a tennis racket and a sports ball lie by the bike's wheel."),
    (560, ["train", "person"],
     ["A train at the station."],
     "Train tracks run past the station where a train and a TV-screen wait (no bus)."),
    (610, ["cat", "bird", "bench"],
     ["A cat watches birds from a park bench."],
     "\"A kitten,\" she said, \"watching the birds.\" Then a dog... sat on the bench!"),
]


def chair_fixtures():
    annotations = [{"image_id": i, "objects": objs, "captions": caps} for i, objs, caps, _ in CHAIR_IMAGES]
    answers = [{"image_id": i, "caption": cap} for i, _, _, cap in CHAIR_IMAGES]
    return annotations, answers


# ============================================================================================================
# Singularization table for the Swift side (which cannot run Pattern): {w: singularize(w)} for every word of the
# synonym vocabulary and of the double-word dict, generated plural candidates of each, irregular plurals, and
# every token of the fixture captions -- keeping only entries where singularize(w) != w. A word missing from the
# table is its own singular (exact for every word whose singular matters to CHAIR, as far as these candidates
# reach).
# ============================================================================================================

IRREGULAR_PLURALS = ["men", "women", "children", "people", "mice", "geese", "teeth", "feet", "oxen", "knives",
                     "wives", "lives", "leaves", "calves", "halves", "loaves", "shelves", "wolves", "scarves",
                     "hooves", "dice", "lice", "deer", "fish", "sheep", "cacti", "fungi", "cattle", "policemen",
                     "gentlemen", "servicemen", "grandchildren", "ponies", "puppies", "doggies", "ties", "bows",
                     "glasses", "skis", "buses", "busses", "taxis", "taxies", "ferries", "lorries", "buffaloes",
                     "tomatoes", "potatoes", "sandwiches", "benches", "couches", "boxes", "dishes", "brushes",
                     "toothbrushes", "scissors", "species", "series", "means"]


def plural_candidates(word):
    out = {word + "s", word + "es", word + "'s"}
    if word.endswith("y"):
        out.add(word[:-1] + "ies")
    if word.endswith("f"):
        out.add(word[:-1] + "ves")
    if word.endswith("fe"):
        out.add(word[:-2] + "ves")
    if word.endswith("man"):
        out.add(word[:-3] + "men")
    if word.endswith("child"):
        out.add(word + "ren")
    if word.endswith("person"):
        out.add(word[:-6] + "people")
    if word.endswith("mouse"):
        out.add(word[:-5] + "mice")
    if word.endswith("goose"):
        out.add(word[:-5] + "geese")
    if word.endswith("foot"):
        out.add(word[:-4] + "feet")
    if word.endswith("tooth"):
        out.add(word[:-5] + "teeth")
    if word.endswith("us"):
        out.add(word + "ses")
    return out


def singularization_table(chair, inflect, extra_tokens):
    vocab = set()
    for line in chair.synonyms:
        for entry in line:
            vocab.update(w for w in entry.split(" ") if w)
    for key, value in chair.double_words.items():
        vocab.update(key.split(" "))
        vocab.update(value.split(" "))
    vocab.update(["toilet", "seat"])
    vocab.update([w.lower() for w in vocab])
    candidates = set(vocab)
    for w in vocab:
        candidates.update(plural_candidates(w))
    candidates.update(IRREGULAR_PLURALS)
    candidates.update(inflect.singular_irregular.keys())
    candidates.update(extra_tokens)
    table = {}
    for w in sorted(candidates):
        s = chair.singularize(w)
        if s != w:
            table[w] = s
    return table


def chair_rules(chair, inflect, extra_tokens):
    return {
        "source": "LisaAnne/Hallucination utils/chair.py CHAIR.__init__ + caption_to_words; singular forms from "
                  "Pattern 3.6 pattern.en.singularize (tools/reference/make_hallusion_chair_fixtures.py)",
        "double_words": chair.double_words,
        "toilet_seat": {"when_all_present": ["toilet", "seat"], "remove": "seat"},
        "singularize": singularization_table(chair, inflect, extra_tokens),
    }


# ============================================================================================================

def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")


def write_json(path, obj, indent=1):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(obj, indent=indent, ensure_ascii=True) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(RESOURCES, exist_ok=True)

    questions, answers = hallusionbench_fixtures()
    write_jsonl(os.path.join(OUT, "hallusionbench_questions.jsonl"), questions)
    write_jsonl(os.path.join(OUT, "hallusionbench_answers.jsonl"), answers)
    write_json(os.path.join(OUT, "hallusionbench_expected.json"), hallusionbench_expected(questions, answers))

    inflect = load_singularize()
    chair = Chair(load_word_tokenize(), inflect.singularize)
    annotations, chair_answers = chair_fixtures()
    expected = chair.compute(annotations, chair_answers)
    tokens = set()
    for a in annotations:
        for caption in a["captions"]:
            tokens.update(chair.caption_to_words(caption)[0])
    for a in chair_answers:
        tokens.update(chair.caption_to_words(a["caption"])[0])
    rules = chair_rules(chair, inflect, tokens)
    # The table must reproduce singularize on every fixture token.
    for t in tokens:
        assert rules["singularize"].get(t, t) == chair.singularize(t), t
    write_jsonl(os.path.join(OUT, "chair_annotations.jsonl"), annotations)
    write_jsonl(os.path.join(OUT, "chair_answers.jsonl"), chair_answers)
    write_json(os.path.join(OUT, "chair_expected.json"), expected)
    write_json(os.path.join(RESOURCES, "chair_rules.json"), rules)


if __name__ == "__main__":
    main()
