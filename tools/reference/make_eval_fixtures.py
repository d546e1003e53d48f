"""Reference fixtures for the hallucination-benchmark scorers (POPE, MME) and the POPE builder.

    python3 tools/reference/make_eval_fixtures.py     # writes Tests/EvaluationTests/Fixtures/

Standard library only, no randomness: running it twice gives identical bytes.

Every scoring rule below is an independent re-implementation of one original harness rule, written after
reading the original; each function names the file it mirrors. The originals are NOT imported or copied:
  * POPE (RUCAIBox/POPE evaluate.py; identical rule in haotian-liu/LLaVA llava/eval/eval_pope.py)
  * lmms-eval (EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/pope/utils.py)
  * VLMEvalKit (open-compass/VLMEvalKit vlmeval/dataset/utils/yorn.py + vlmeval/smp/misc.py process_punctuation
    + vlmeval/dataset/image_yorn.py ImageYORNDataset.evaluate)
  * MME (BradyFU/Awesome-Multimodal-Large-Language-Models, branch "Evaluation", tools/eval_tool.zip ->
    eval_tool/calculation.py)
  * POPE builder (RUCAIBox/POPE main.py + utils.py: pope, create_question, generate_ground_truth_objects,
    compute_co_occurrence)

Scoring conventions of these fixtures (not of the originals, which all assume one answer per question in file
order): answers are matched to questions by question_id; questions without an answer are not scored; any division
by zero is written as 0; every rate is a fraction in [0, 1] (VLMEvalKit's percentages are divided back).
"""
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "EvaluationTests", "Fixtures")
CATEGORIES = ("adversarial", "popular", "random")


def div(a, b):
    """a / b, or 0 where the harness would divide by zero."""
    return a / b if b else 0.0


# ============================================================================================================
# Rule 1: POPE original -- RUCAIBox/POPE evaluate.py (same code in haotian-liu/LLaVA llava/eval/eval_pope.py)
# ============================================================================================================

def pope_parse(text):
    """RUCAIBox/POPE evaluate.py: keep the text before the first '.', delete every ',', split on single spaces
    (str.split(' '), so newlines/tabs stay inside words and runs of spaces give empty words); the answer is "no"
    if one word is exactly 'No', 'not' or 'no' (case-sensitive), otherwise "yes" -- never unknown."""
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


def pope_metrics(rows):
    """RUCAIBox/POPE evaluate.py metrics. rows: [(label, parsed)]. label 'no' -> 0, ANY other label -> 1;
    prediction 'no' -> 0 else 1. yes_ratio = predicted-yes / all. acc = (TP+TN)/(TP+TN+FP+FN)."""
    labels = [0 if label == "no" else 1 for label, _ in rows]
    preds = [0 if parsed == "no" else 1 for _, parsed in rows]
    tp = sum(1 for p, l in zip(preds, labels) if p == 1 and l == 1)
    fp = sum(1 for p, l in zip(preds, labels) if p == 1 and l == 0)
    tn = sum(1 for p, l in zip(preds, labels) if p == 0 and l == 0)
    fn = sum(1 for p, l in zip(preds, labels) if p == 0 and l == 1)
    precision = div(tp, tp + fp)
    recall = div(tp, tp + fn)
    return {
        "count": len(rows),
        "accuracy": div(tp + tn, tp + tn + fp + fn),
        "precision": precision,
        "recall": recall,
        "f1": div(2 * precision * recall, precision + recall),
        "yes_ratio": div(preds.count(1), len(preds)),
        "unknown": 0,
    }


# ============================================================================================================
# Rule 2: lmms-eval -- EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/pope/utils.py
# ============================================================================================================

def lmms_parse(text):
    """pope_process_results: pred = results[0].lower().strip(); only an exact 'yes' / 'no' is an answer.
    (The original keeps the raw lowered string; anything else simply matches neither -> "unknown" here.)"""
    pred = text.lower().strip()
    return pred if pred in ("yes", "no") else "unknown"


def lmms_metrics(rows):
    """pope_aggregate_*: rows [(label, parsed)], gt = label.lower().strip() (asserted yes/no).
    accuracy = exact matches / ALL rows (unknown counts as wrong).
    precision = TP / (TP + FP), FP = gt no & pred 'yes'.
    recall = TP / (TP + FN), FN = gt yes & pred exactly 'no' (unknown answers are in NEITHER cell).
    f1 = 2PR/(P+R). yes_ratio = GROUND-TRUTH yes / (gt yes + gt no) -- not the predictions."""
    gts = [label.lower().strip() for label, _ in rows]
    preds = [parsed for _, parsed in rows]
    tp = sum(1 for g, p in zip(gts, preds) if g == "yes" and p == "yes")
    fp = sum(1 for g, p in zip(gts, preds) if g == "no" and p == "yes")
    fn = sum(1 for g, p in zip(gts, preds) if g == "yes" and p == "no")
    precision = div(tp, tp + fp)
    recall = div(tp, tp + fn)
    return {
        "count": len(rows),
        "accuracy": div(sum(1 for g, p in zip(gts, preds) if g == p), len(rows)),
        "precision": precision,
        "recall": recall,
        "f1": div(2 * (precision * recall), precision + recall),
        "yes_ratio": div(gts.count("yes"), gts.count("yes") + gts.count("no")),
        "unknown": preds.count("unknown"),
    }


# ============================================================================================================
# Rule 3: VLMEvalKit -- open-compass/VLMEvalKit vlmeval/smp/misc.py (process_punctuation),
#         vlmeval/dataset/utils/yorn.py (YOrN_Extraction, POPE_rating, MME_rating),
#         vlmeval/dataset/image_yorn.py (score = answer == extracted), exact_matching judge (no LLM).
# ============================================================================================================

VLM_PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
             ",", "?", "!"]
VLM_DIGIT_COMMA = re.compile(r"(\d)(,)(\d)")
# The original pattern is "(?!<=\d)(\.)(?!\d)": its "lookbehind" is a lookahead for the text "<=digit", which never
# matches at a period, so every period NOT FOLLOWED by a digit goes (also one after a digit, as in "5.").
VLM_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")


def vlm_process_punctuation(in_text):
    """vlmeval/smp/misc.py process_punctuation. For each mark in VLM_PUNCT (in that order): if the ORIGINAL
    text contains 'mark+space' or 'space+mark', or anywhere a digit,comma,digit, the mark is deleted, else it
    is replaced by one space. Then periods not touching a digit are deleted, but only the first 32: the
    original passes re.UNICODE (=32) as the positional `count` argument of Pattern.sub.
    Not in the list (left inside words): ' : . * # & % $ ^ ~ | and the newline."""
    out = in_text
    digit_comma = VLM_DIGIT_COMMA.search(in_text) is not None
    for p in VLM_PUNCT:
        if (p + " " in in_text or " " + p in in_text) or digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return VLM_PERIOD.sub("", out, count=32)


def vlm_extract(text):
    """yorn.py YOrN_Extraction: lower(), process_punctuation, split() on any whitespace;
    'Yes' if 'yes' is a word and 'no' is not, 'No' for the reverse, else 'Unknown'."""
    words = vlm_process_punctuation(text.lower()).split()
    if "yes" in words and "no" not in words:
        return "Yes"
    if "yes" not in words and "no" in words:
        return "No"
    return "Unknown"


def vlm_parsed_name(extracted):
    return {"Yes": "yes", "No": "no", "Unknown": "unknown"}[extracted]


def vlm_pope_metrics(rows):
    """yorn.py POPE_rating. rows [(label, parsed)]; the TSV answer is 'Yes'/'No' (we capitalise our
    lowercase labels as the VLMEvalKit POPE.tsv has them). y_true = answer == 'Yes'; y_pred = extracted ==
    'Yes' (so Unknown counts as a predicted No: a truth-yes Unknown is a false negative).
    precision = tp/(tp+fp), recall = tp/(tp+fn), f1 = 2PR/(P+R), 0 where a denominator is 0.
    acc = mean(score), score = (answer == extracted) (case-sensitive; Unknown is wrong).
    All are percentages in the original; fractions here. VLMEvalKit reports NO yes_ratio: the yes_ratio here
    is this fixture's definition, extracted 'Yes' / all rows."""
    answers = ["Yes" if label == "yes" else "No" for label, _ in rows]
    extracted = [{"yes": "Yes", "no": "No", "unknown": "Unknown"}[p] for _, p in rows]
    y_true = [1 if a == "Yes" else 0 for a in answers]
    y_pred = [1 if e == "Yes" else 0 for e in extracted]
    tp = sum(1 for t, p in zip(y_true, y_pred) if t == 1 and p == 1)
    fp = sum(1 for t, p in zip(y_true, y_pred) if t == 0 and p == 1)
    fn = sum(1 for t, p in zip(y_true, y_pred) if t == 1 and p == 0)
    precision = div(tp, tp + fp)
    recall = div(tp, tp + fn)
    return {
        "count": len(rows),
        "accuracy": div(sum(1 for a, e in zip(answers, extracted) if a == e), len(rows)),
        "precision": precision,
        "recall": recall,
        "f1": div(2 * (precision * recall), precision + recall),
        "yes_ratio": div(extracted.count("Yes"), len(rows)),
        "unknown": extracted.count("Unknown"),
    }


def vlm_mme_rating(items):
    """yorn.py MME_rating. items [(category, image, answer 'Yes'/'No', extracted)], score = answer == extracted.
    Per category: acc = mean of all scores; plus = mean over images (grouped by image_path, first-seen order)
    of val[0]*val[1] (the first two scores of that image); score = 100*acc + 100*plus.
    Super-categories: perception = the 10 MME perception tasks, 'reasoning' = the 4 cognition tasks; the
    original raises KeyError when one is absent -- here the sum runs over those present."""
    stats = {}
    for category, image, answer, extracted in items:
        stats.setdefault(category, {}).setdefault(image, []).append(1 if answer == extracted else 0)
    subtasks = {}
    for category, per_image in stats.items():
        values = [v for scores in per_image.values() for v in scores]
        plus = [scores[0] * scores[1] for scores in per_image.values()]
        acc = div(sum(values), len(values))
        acc_plus = div(sum(plus), len(plus))
        subtasks[category] = {"acc": acc, "acc_plus": acc_plus, "score": acc * 100 + acc_plus * 100,
                              "count": len(values)}
    return subtasks


# ============================================================================================================
# Rule 4: MME official -- BradyFU/Awesome-Multimodal-Large-Language-Models (branch Evaluation)
#         tools/eval_tool.zip -> eval_tool/calculation.py
# ============================================================================================================

# calculation.py eval_type_dict (the official lists):
MME_PERCEPTION = ["existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
                  "artwork", "OCR"]
MME_COGNITION = ["commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning"]


def mme_result_field(text):
    """eval_tool/readme.txt: a response must sit on one line ("if your responses contain "\\n", please delete
    it"), so newlines are deleted. calculation.py then reads the 4th tab field of the line; it still ends in the
    line's '\\n', which can never change the parse below, so it is left off here. (A tab in a response would
    break the original's 4-way split; the fixtures have none.)"""
    return text.replace("\n", "")


def mme_parse_pred_ans(text):
    """calculation.py parse_pred_ans, after pred_ans.lower(): exactly 'yes'/'no' -> itself; otherwise look only
    at the first 4 characters: contains 'yes' -> 'yes', else contains 'no' -> 'no', else 'other'.
    (So 'not sure', 'nope', 'none', 'another', 'snow' -> no; 'eyes' -> yes; '  yes', 'the answer is yes',
    '' -> other; no stripping.)"""
    pred = mme_result_field(text).lower()
    if pred in ["yes", "no"]:
        return pred
    prefix = pred[:4]
    if "yes" in prefix:
        return "yes"
    if "no" in prefix:
        return "no"
    return "other"


def mme_task_metrics(rows):
    """calculation.py process_result for one task file. rows [(gt, parsed)] in file order; gt is lowercased.
    acc = sklearn accuracy_score over all rows ('other' is wrong, it maps to -1).
    acc_plus = (#chunks of 2 CONSECUTIVE lines with both correct) / #chunks -- pairs are by position in
    the file, not by image name; MME files list each image's two questions together.
    score = acc*100 + acc_plus*100."""
    gts = [gt.lower() for gt, _ in rows]
    preds = [p for _, p in rows]
    acc = div(sum(1 for g, p in zip(gts, preds) if g == p), len(rows))
    chunks = [list(zip(gts[i:i + 2], preds[i:i + 2])) for i in range(0, len(rows), 2)]
    plus_correct = sum(1 for chunk in chunks if sum(1 for g, p in chunk if g == p) == 2)
    acc_plus = div(plus_correct, len(chunks))
    score = 0
    for value in (acc, acc_plus):
        score += value * 100
    return {"acc": acc, "acc_plus": acc_plus, "score": score, "count": len(rows)}


# ============================================================================================================
# Rule 5: POPE builder -- RUCAIBox/POPE main.py + utils.py
# ============================================================================================================

POPE_TEMPLATE = "Is there a {} in the image?"


def pope_question_text(obj, template=POPE_TEMPLATE, original_bug=False):
    """utils.py create_question: objects whose first character is one of the LOWERCASE vowels a e i o u use
    template.replace("a", "an"), which replaces EVERY 'a' -- "Is there an {} in the imange?". The published
    output/coco files were hand-corrected ("Fix spelling errors" commits) to "...an {} in the image?".
    original_bug=True reproduces the code; False the published text, with ReAlign's fix for capitalised
    objects ("an Apple")."""
    if obj[0] in ["a", "e", "i", "o", "u"] or (not original_bug and obj[0] in "AEIOU"):
        if original_bug:
            return template.replace("a", "an").format(obj)
        return template.replace("Is there a ", "Is there an ").format(obj)
    return template.format(obj)


def pope_ground_truth_objects(images):
    """utils.py generate_ground_truth_objects: count of every entry of every selected image's objects list
    (dict insertion order = first appearance)."""
    counts = {}
    for image in images:
        for o in image["objects"]:
            counts[o] = counts.get(o, 0) + 1
    return counts


def pope_co_occurrence(images):
    """utils.py compute_co_occurrence: for every ordered pair (o, other) of entries of one image with o != other,
    count += 1; each list then sorted by count descending with a STABLE sort (ties keep first-seen order)."""
    co = {}
    for image in images:
        objects = image["objects"]
        for o in objects:
            row = co.setdefault(o, {})
            for other in objects:
                if other != o:
                    row[other] = row.get(other, 0) + 1
    return {o: [k for k, _ in sorted(row.items(), key=lambda x: x[1], reverse=True)] for o, row in co.items()}


def pope_build(images, strategy, sample_num=3):
    """utils.py pope for the deterministic strategies (popular, adversarial), for images already selected and
    ordered (main.py: keep images with len(objects) >= sample_num, then random.sample(.., img_num) -- unseeded).
    Per image: for i in 0..sample_num-1 the positive is objects[i], then one negative right after it. A negative
    must be in neither the image's objects nor this image's history (its positives and negatives so far).
    popular: first such object in the global frequency ranking; adversarial: first such object in the
    co-occurrence ranking OF THIS POSITIVE. Returns per image the positives, the negatives, and whether a
    negative needed the random fallback (random.choice over all objects; not reproducible -> None)."""
    counts = pope_ground_truth_objects(images)
    ranking = [k for k, _ in sorted(counts.items(), key=lambda x: x[1], reverse=True)]
    co = pope_co_occurrence(images)
    out = []
    for image in images:
        history, positives, negatives = [], [], []
        for i in range(sample_num):
            pos = image["objects"][i]
            history.append(pos)
            positives.append(pos)
            candidates = ranking if strategy == "popular" else co[pos]
            chosen = next((c for c in candidates if c not in history and c not in image["objects"]), None)
            if chosen is not None:
                history.append(chosen)
            negatives.append(chosen)
        out.append({"image": image["image"], "positives": positives, "negatives": negatives})
    return out


# ============================================================================================================
# Fixture data
# ============================================================================================================

POPE_IMAGES = {
    # image: objects (first three are the positives, as the builder takes them)
    1: ["person", "dining table", "umbrella", "cup"],
    2: ["car", "traffic light", "person", "bus"],
    3: ["apple", "orange", "banana", "bowl"],
    4: ["dog", "frisbee", "person"],
    5: ["oven", "sink", "refrigerator"],
    6: ["elephant", "person", "truck"],
    7: ["pizza", "dining table", "chair", "cup"],
    8: ["skis", "person", "snowboard"],
    9: ["cat", "couch", "remote"],
    10: ["bed", "book", "clock"],
}
# negatives per image for the three categories (what a build might have drawn)
POPE_NEGATIVES = {
    1: ["car", "dog", "toilet"],
    2: ["dining table", "chair", "cup"],
    3: ["person", "dining table", "knife"],
    4: ["cat", "car", "sports ball"],
    5: ["microwave", "person", "dining table"],
    6: ["giraffe", "car", "umbrella"],
    7: ["fork", "person", "wine glass"],
    8: ["backpack", "car", "bench"],
    9: ["dog", "tv", "person"],
    10: ["teddy bear", "person", "laptop"],
}
# image -> category; each image's six questions are interleaved yes/no like a built file
POPE_IMAGE_CATEGORY = {1: "random", 2: "random", 3: "random", 4: "random", 5: "popular", 6: "popular",
                       7: "popular", 8: "adversarial", 9: "adversarial", 10: "adversarial"}
POPE_IMAGE_IDS = {1: 310196, 2: 210789, 3: 429109, 4: 16631, 5: 574790, 6: 131089, 7: 393225, 8: 125472,
                  9: 87038, 10: 554002}
# question ids written with the alternate (lmms-lab/POPE) keys question / answer / image_source
POPE_ALT_KEYS = {5, 14, 23, 31, 42, 57}
POPE_MISSING = {18, 47}

# 58 answers, one per question except POPE_MISSING, given in question order here and shuffled on output.
POPE_ANSWER_TEXTS = [
    "No.", "no", "NO", "Yes", "yes.", "Yes, there is no dog.",
    "not sure", "There is no dog in the image.", "No, there is not.", "I cannot tell", "", "Yes,there is",
    "  yes  ", "Nope", "yes!", "No dog.", "Yes. But no.",
    "there is a dog, no doubt", "The answer is yes", "YES", "Yes.", "no.", "No!",
    "Yes  there is a dog.", "No  there is not", "yes\nthere is a dog", "no\nthere is none", "Yes\n", "No\n",
    "yes-no", "Yes, it is.", "No, it is not.", "no, there isn't", "Yes" + "." * 33, "The answer is no.",
    "Yes there is a dog (no doubt)", "no;yes", "yes/no", "Not", "There is not a dog.",
    "No,it is 1,000", "Yes!!", "yes, but no", "  No  ", "Yes.No", "no doubt, yes",
    "Absolutely", "N/A", "yes: there is", "No: there is none", "'yes'", "\"No\"",
    "No, there is no umbrella.", "Yes, there is an apple in the image.", "I think so, yes.", "no...",
    "no", "Yes",
]

MME_TASKS = [
    # (subtask, [(question, answer) x 2 per image] for 3 images)
    ("existence", [
        ("Is there a dog in this image?", "Yes"), ("Is there a cat in this image?", "No"),
        ("Is there a train in this image?", "Yes"), ("Is there a bed in this image?", "No"),
        ("Is there an umbrella in this image?", "No"), ("Is there a person in this image?", "Yes")]),
    ("count", [
        ("Are there two cats in the image?", "Yes"), ("Are there three cats in the image?", "No"),
        ("Is there only one bus in the image?", "Yes"), ("Are there two buses in the image?", "No"),
        ("Are there four people in the image?", "No"), ("Are there three people in the image?", "Yes")]),
    ("color", [
        ("Is the car in the image red?", "Yes"), ("Is the car in the image blue?", "No"),
        ("Is there a white plate in the image?", "Yes"), ("Is there a black plate in the image?", "No"),
        ("Is the umbrella yellow?", "No"), ("Is the umbrella green?", "Yes")]),
    ("OCR", [
        ("Is the word in the logo \"starbucks\"?", "Yes"), ("Is the word in the logo \"costa\"?", "No"),
        ("Is the phrase \"stop\" in the image?", "Yes"), ("Is the phrase \"go\" in the image?", "No"),
        ("Does the sign say \"exit\"?", "No"), ("Does the sign say \"open\"?", "Yes")]),
    ("commonsense_reasoning", [
        ("Should I take an umbrella when going out in this weather?", "Yes"),
        ("Is it a good idea to go swimming in this weather?", "No"),
        ("Is this food suitable for a vegetarian?", "No"), ("Does this food contain meat?", "Yes"),
        ("Is it safe to cross the street now?", "No"), ("Should the pedestrian wait?", "Yes")]),
    ("code_reasoning", [
        ("Is the output of the code '12'?", "Yes"), ("Is the output of the code '21'?", "No"),
        ("Will the code print 'hello world'?", "No"), ("Will the code print 'hello'?", "Yes"),
        ("Does the loop run 5 times?", "Yes"), ("Does the loop run 4 times?", "No")]),
]
MME_ANSWER_TEXTS = [
    # existence
    "Yes", "No", "yes", "no.", "Yes, there is a dog.", "Other",
    # count
    "", "not sure", "  yes", "No", "The answer is yes", "YES",
    # color
    "Yes, the car is red.", "Nope", "eyes", "another one", "No\nit is not", "yes!",
    # OCR
    "yes", "no", "I don't know", "snow", " no", "yesno",
    # commonsense_reasoning
    "Yes", "no", "None of them", "unknown", "No.", "N",
    # code_reasoning
    "yes", "No", "noyes", "Yes", "a yes", "No, it runs 5 times.",
]

# POPE builder input: {"image", "objects"} per line, like RUCAIBox/POPE segmentation/coco_ground_truth_segmentation.json
POPE_ANNOTATIONS = [
    (310196, ["person", "car", "umbrella", "traffic light", "handbag", "backpack"]),
    (87038, ["cat"]),
    (16631, ["dining table", "cup", "chair", "fork", "knife"]),
    (429109, ["apple", "orange", "bowl", "banana"]),
    (574790, ["oven", "sink", "refrigerator", "microwave"]),
    (125472, ["elephant", "person", "truck", "bench"]),
    (131089, ["person", "sports ball"]),
    (554002, ["umbrella", "person", "handbag", "car"]),
    (347170, ["dog", "person", "car", "frisbee"]),
    (241668, ["cup", "bottle", "dining table", "person", "wine glass", "pizza"]),
    (458755, ["toilet", "sink"]),
    (190756, ["sink", "oven", "person", "bottle"]),
    (62808, ["orange", "apple", "dining table", "cup"]),
    (169996, ["car", "bus", "truck", "person", "traffic light"]),
    (393225, ["bowl", "dining table", "cup", "spoon"]),
    (515716, ["teddy bear", "bed"]),
    (210789, ["person", "dining table", "pizza", "chair"]),
    (97585, ["truck", "car", "elephant"]),
    (42276, ["chair", "person", "couch", "tv"]),
    (482100, ["bicycle", "person"]),
    (370711, ["bottle", "cup", "sink", "oven"]),
    (325991, ["dog", "car", "umbrella", "bus"]),
    (289343, ["refrigerator", "oven", "person", "cup"]),
    (226903, ["bus", "person", "umbrella"]),
]

COCO_CATEGORIES = [(1, "person"), (2, "bicycle"), (3, "car"), (6, "bus"), (8, "truck"), (10, "traffic light"),
                   (18, "dog"), (22, "elephant"), (28, "umbrella"), (31, "handbag"), (47, "cup"), (48, "fork"),
                   (51, "bowl"), (53, "apple"), (55, "orange"), (67, "dining table"), (79, "oven"),
                   (81, "sink")]
# image id -> category ids of its instances, in annotation order (repeats = several instances)
COCO_INSTANCES = [
    (310196, [1, 1, 3, 1]),
    (210789, [8, 1, 28, 3, 10, 1, 1]),
    (131089, [1]),
    (16631, [1, 67, 47, 48, 47, 1]),
    (429109, [53, 55, 53, 51]),
    (574790, [79, 81]),
    (125472, [22, 22, 1, 8]),
    (87038, []),
]


# ============================================================================================================
# Builders
# ============================================================================================================

def image_name(image_id):
    return "COCO_val2014_%012d.jpg" % image_id


def pope_questions():
    questions, qid = [], 1
    for img in sorted(POPE_IMAGES):
        for pos, neg in zip(POPE_IMAGES[img][:3], POPE_NEGATIVES[img]):
            for obj, label in ((pos, "yes"), (neg, "no")):
                q = {"question_id": qid, "image": image_name(POPE_IMAGE_IDS[img]),
                     "text": pope_question_text(obj), "label": label, "category": POPE_IMAGE_CATEGORY[img]}
                if qid in POPE_ALT_KEYS:
                    q = {"question_id": qid, "image_source": q["image"], "question": q["text"],
                         "answer": q["label"], "category": q["category"]}
                questions.append(q)
                qid += 1
    return questions


def q_field(q, main, alt):
    return q[main] if main in q else q[alt]


def pope_answers(questions):
    ids = [q["question_id"] for q in questions if q["question_id"] not in POPE_MISSING]
    assert len(ids) == len(POPE_ANSWER_TEXTS), (len(ids), len(POPE_ANSWER_TEXTS))
    answers = [{"question_id": i, "text": t} for i, t in zip(ids, POPE_ANSWER_TEXTS)]
    n = len(answers)
    order = sorted(range(n), key=lambda k: (k * 23) % n)  # fixed permutation (23 is coprime with 58)
    return [answers[k] for k in order]


def pope_expected(questions, answers):
    by_id = {a["question_id"]: a["text"] for a in answers}
    scored = [q for q in questions if q["question_id"] in by_id]
    rules = {"pope": (pope_parse, pope_metrics), "lmms-eval": (lmms_parse, lmms_metrics),
             "vlmevalkit": (lambda t: vlm_parsed_name(vlm_extract(t)), vlm_pope_metrics)}
    out = {"missing": len(questions) - len(scored), "rules": {}, "yes_bias": {}}
    for name, (parse, metrics) in rules.items():
        parsed = {q["question_id"]: parse(by_id[q["question_id"]]) for q in scored}
        rows = [(q_field(q, "label", "answer"), parsed[q["question_id"]]) for q in scored]
        cats = {}
        for c in CATEGORIES:
            cats[c] = metrics([(q_field(q, "label", "answer"), parsed[q["question_id"]])
                               for q in scored if q["category"] == c])
        out["rules"][name] = {"overall": metrics(rows), "categories": cats,
                              "parsed": {str(k): v for k, v in sorted(parsed.items())}}
        cells = {"true_yes_pred_yes": 0, "true_yes_pred_no": 0, "true_no_pred_yes": 0, "true_no_pred_no": 0,
                 "unknown": 0}
        for label, p in rows:
            if p == "unknown":
                cells["unknown"] += 1
            else:
                cells["true_%s_pred_%s" % (label, p)] += 1
        true_no = sum(1 for label, _ in rows if label == "no")
        cells["false_yes_rate"] = div(cells["true_no_pred_yes"], true_no)
        out["yes_bias"][name] = cells
    return out


def mme_questions():
    questions, qid = [], 1
    for task, pairs in MME_TASKS:
        for k, (question, answer) in enumerate(pairs):
            questions.append({"question_id": qid, "image": "%s/%06d.jpg" % (task, k // 2 + 1),
                              "question": question + " Please answer yes or no.", "answer": answer,
                              "category": task})
            qid += 1
    return questions


def mme_answers(questions):
    assert len(questions) == len(MME_ANSWER_TEXTS)
    answers = [{"question_id": q["question_id"], "text": t} for q, t in zip(questions, MME_ANSWER_TEXTS)]
    n = len(answers)
    order = sorted(range(n), key=lambda k: (k * 11) % n)  # fixed permutation (11 is coprime with 36)
    return [answers[k] for k in order]


def mme_expected(questions, answers):
    by_id = {a["question_id"]: a["text"] for a in answers}
    parsed = {q["question_id"]: mme_parse_pred_ans(by_id[q["question_id"]]) for q in questions}
    subtasks = {}
    for task in [t for t, _ in MME_TASKS]:  # task files keep the question order
        rows = [(q["answer"], parsed[q["question_id"]]) for q in questions if q["category"] == task]
        subtasks[task] = mme_task_metrics(rows)
    perception = sum(v["score"] for k, v in subtasks.items() if k in MME_PERCEPTION)
    cognition = sum(v["score"] for k, v in subtasks.items() if k in MME_COGNITION)
    # extra: VLMEvalKit's MME_rating on the same answers (YOrN_Extraction instead of the prefix rule)
    extracted = {q["question_id"]: vlm_extract(by_id[q["question_id"]]) for q in questions}
    vsub = vlm_mme_rating([(q["category"], q["image"], q["answer"], extracted[q["question_id"]])
                           for q in questions])
    return {
        "subtasks": subtasks,
        "perception": perception,
        "cognition": cognition,
        "parsed": {str(k): v for k, v in sorted(parsed.items())},
        "vlmevalkit": {
            "subtasks": vsub,
            "perception": sum(v["score"] for k, v in vsub.items() if k in MME_PERCEPTION),
            "cognition": sum(v["score"] for k, v in vsub.items() if k in MME_COGNITION),
            "parsed": {str(k): vlm_parsed_name(v) for k, v in sorted(extracted.items())},
        },
    }


def pope_annotations():
    return [{"image": image_name(i), "objects": objs} for i, objs in POPE_ANNOTATIONS]


def coco_instances():
    names = dict(COCO_CATEGORIES)
    images, annotations, ann_id = [], [], 1
    for image_id, cats in COCO_INSTANCES:
        images.append({"id": image_id, "file_name": image_name(image_id), "width": 640, "height": 480})
        for c in cats:
            assert c in names
            annotations.append({"id": ann_id, "image_id": image_id, "category_id": c,
                                "bbox": [10.0 * ann_id, 20.0, 50.0, 40.0], "area": 2000.0, "iscrowd": 0})
            ann_id += 1
    return {"images": images, "annotations": annotations,
            "categories": [{"id": i, "name": n, "supercategory": "object"} for i, n in COCO_CATEGORIES]}


def pope_build_expected(annotations):
    """Builder expectation with img_num = all eligible images and the selection kept in FILE order (the original
    shuffles with an unseeded random.sample, so only this ordering is reproducible)."""
    selected = [a for a in annotations if len(a["objects"]) >= 3]
    counts = pope_ground_truth_objects(selected)
    result = {
        "sample_num": 3,
        "template": POPE_TEMPLATE,
        "selected_images": [a["image"] for a in selected],
        "frequency_ranking": [[k, v] for k, v in sorted(counts.items(), key=lambda x: x[1], reverse=True)],
        "co_occurrence_ranking": pope_co_occurrence(selected),
        "popular": pope_build(selected, "popular"),
        "adversarial": pope_build(selected, "adversarial"),
        "texts": [{"object": o, "text": pope_question_text(o), "text_original_code": pope_question_text(o, original_bug=True)}
                  for o in ["person", "apple", "orange", "umbrella", "elephant", "oven", "dining table", "Apple"]],
    }
    # null = the original's random fallback (random.choice until the object is in neither the image nor its
    # history): not reproducible, so the fixture allows it only as an image's LAST negative (nothing after it
    # depends on it). Exactly one such case: the adversarial negative for "couch".
    for strategy in ("popular", "adversarial"):
        for item in result[strategy]:
            assert None not in item["negatives"][:-1], (strategy, item)
    assert sum(item["negatives"].count(None) for item in result["adversarial"]) == 1
    assert all(None not in item["negatives"] for item in result["popular"])
    return result


# ============================================================================================================

def write_jsonl(name, rows):
    with open(os.path.join(OUT, name), "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")


def write_json(name, obj, indent=1):
    with open(os.path.join(OUT, name), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(obj, indent=indent, ensure_ascii=True) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    pq = pope_questions()
    pa = pope_answers(pq)
    write_jsonl("pope_questions.jsonl", pq)
    write_jsonl("pope_answers.jsonl", pa)
    write_json("pope_expected.json", pope_expected(pq, pa))
    mq = mme_questions()
    ma = mme_answers(mq)
    write_jsonl("mme_questions.jsonl", mq)
    write_jsonl("mme_answers.jsonl", ma)
    write_json("mme_expected.json", mme_expected(mq, ma))
    ann = pope_annotations()
    write_jsonl("pope_annotations.jsonl", ann)
    write_json("coco_instances_small.json", coco_instances(), indent=None)
    write_json("pope_build_expected.json", pope_build_expected(ann), indent=None)
    for name in sorted(os.listdir(OUT)):
        print("%-28s %6d bytes" % (name, os.path.getsize(os.path.join(OUT, name))))


if __name__ == "__main__":
    main()
