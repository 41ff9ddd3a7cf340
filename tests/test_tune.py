import json
import re
from pathlib import Path

import pytest
import torch

from kbqa.app import KnowledgeBase
from kbqa.assistant.free import _IDK
from kbqa.assistant.generator import TransformersGenerator
from kbqa.assistant.prompt import SYSTEM, build_messages
from kbqa.errors import KbqaError
from kbqa.evals.beir import load_beir
from kbqa.evals.datasets import prepare
from kbqa.retrieval import device
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import TUNE_BASE
from kbqa.store import FeedbackRow
from kbqa.tune.data import (
    accepted_reply,
    build_training_data,
    evaluation_questions,
    thread_messages,
)
from kbqa.tune.examples import ABSTAIN_REPLY, answer_reply, cite, read_examples
from kbqa.tune.train import INFO_FILE, TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
SLACK_EXPORT = ROOT / "examples" / "slack-export"
HALUEVAL = Path(__file__).parent / "data" / "evals" / "halueval_sample.jsonl"
GRAFANA_THREAD = "https://larkspur.slack.com/archives/C05ENGHELP/p1794244440004137"


def _passages(example: dict) -> dict[int, str]:
    """Passage number -> its text, parsed back out of the user turn."""
    content = example["messages"][-1]["content"]
    body = content.rsplit("\n\nQuestion: ", 1)[0]
    parts = re.split(r"(?:^|\n\n)Source \[(\d+)\]: [^\n]*\n<passage>\n", body)
    return {
        int(n): text.removesuffix("\n</passage>")
        for n, text in zip(parts[1::2], parts[2::2], strict=True)
    }


@pytest.fixture
def built(tmp_path: Path, settings):
    """Training data from the example Slack export, a 👍 answer and the halueval fixture."""
    settings = settings.replace(slack_workspace="larkspur")
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    kb.ingest([SLACK_EXPORT])
    with kb.store.session() as s:
        s.add(
            FeedbackRow(
                value=1,
                question="How do I get access to the staging Grafana?",
                answer="Run `larkctl access grant grafana-staging --user you` [1].",
                citations=[{"uri": GRAFANA_THREAD}],
                user="U1",
                channel="C1",
                private=False,
            )
        )
        s.add(
            FeedbackRow(
                value=-1, question="q", answer="bad [1].", citations=[], user="U", channel="C"
            )
        )
        s.commit()
    folder = prepare("halueval-qa", tmp_path / "datasets", sample=10, source=HALUEVAL)
    halueval_kb = KnowledgeBase(
        settings.replace(home=settings.home / "evals" / "halueval-qa"), embedder=HashEmbedder()
    )
    out = settings.home / "tune" / "train.jsonl"
    counts = build_training_data(
        kb, out, halueval_dir=folder, halueval_kb=halueval_kb, abstain_fraction=0.5
    )
    return counts, read_examples(out), load_beir(folder), out


def test_counts_per_source_match_the_file(built):
    counts, examples, _, _ = built
    assert counts["slack"] >= 2 and counts["feedback"] == 1
    assert counts["halueval"] > 0 and counts["halueval-abstain"] > 0
    for source, count in counts.items():
        assert sum(e["source"] == source for e in examples) == count


def test_examples_are_the_answerers_prompt_and_a_cited_reply(built):
    _, examples, _, _ = built
    for example in examples:
        messages = example["messages"]
        assert [m["role"] for m in messages] == ["system", "user"]
        assert messages[0]["content"] == SYSTEM
        assert messages[1]["content"].endswith(f"\n\nQuestion: {example['question']}")
        passages = _passages(example)
        assert list(passages) == list(range(1, len(passages) + 1))
        if example["gold"]:
            cited = [int(n) for n in re.findall(r"\[(\d+)\]", example["reply"])]
            assert cited and set(cited) <= set(example["gold"]) <= set(passages)
            assert example["reply"].rstrip(".!?").endswith("]")


def test_slack_examples_answer_with_the_accepted_reply_from_the_threads_own_passage(built):
    _, examples, _, _ = built
    grafana = next(e for e in examples if e["source"] == "slack" and e["id"] == GRAFANA_THREAD)
    assert grafana["question"].startswith("Hi all, first week here")
    assert "larkctl access grant grafana-staging" in grafana["reply"]
    [n] = grafana["gold"]
    assert "Staging Grafana isn't part of the default onboarding groups" in _passages(grafana)[n]
    # The private channel's threads are not trained on unless asked for.
    assert not any("] (#sec-private:" in e["messages"][1]["content"] for e in examples)


def test_halueval_gold_is_the_cited_passage_and_absent_from_abstentions(built):
    _, examples, dataset, _ = built
    for example in examples:
        if not example["source"].startswith("halueval"):
            continue
        gold_id = next(iter(dataset.qrels["train"][example["id"]]))
        gold_text = dataset.corpus[gold_id][1]
        passages = _passages(example)
        if example["source"] == "halueval":
            [n] = example["gold"]
            assert passages[n] == gold_text
            answer = dataset.answers[example["id"]]["answer"]
            assert example["reply"] == answer_reply(answer, gold_text, n)
            assert example["reply"].startswith(cite(answer[:1].upper() + answer[1:], n))
            assert [p for i, p in passages.items() if i != n and p == gold_text] == []
        else:
            assert example["gold"] == [] and example["reply"] == ABSTAIN_REPLY
            assert _IDK.search(example["reply"])
            assert gold_text not in passages.values()


def test_no_dev_or_test_question_is_trained_on(built):
    _, examples, dataset, _ = built
    held_out = evaluation_questions(dataset)
    assert held_out and len(held_out) >= 10
    assert not {e["question"] for e in examples} & held_out
    assert {e["id"] for e in examples if e["source"].startswith("halueval")} <= set(
        dataset.qrels["train"]
    )


def test_a_dev_question_in_the_training_split_is_refused(tmp_path: Path, settings):
    folder = prepare("halueval-qa", tmp_path / "datasets", sample=10, source=HALUEVAL)
    dev = next(iter(load_beir(folder).qrels["dev"]))
    tsv = folder / "qrels" / "train.tsv"
    gold = (folder / "qrels" / "dev.tsv").read_text().splitlines()[1].split("\t")[1]
    tsv.write_text(tsv.read_text() + f"{dev}\t{gold}\t1\n")
    halueval_kb = KnowledgeBase(settings, embedder=HashEmbedder())
    with pytest.raises(KbqaError, match="training and evaluation"):
        build_training_data(
            None, tmp_path / "t.jsonl", halueval_dir=folder, halueval_kb=halueval_kb
        )


def test_the_same_seed_writes_the_same_file(built, settings, tmp_path: Path):
    _, _, _, out = built
    folder = tmp_path / "datasets" / "halueval-qa"
    again = tmp_path / "again.jsonl"
    kb = KnowledgeBase(settings.replace(slack_workspace="larkspur"), embedder=HashEmbedder())
    halueval_kb = KnowledgeBase(
        settings.replace(home=settings.home / "evals" / "halueval-qa"), embedder=HashEmbedder()
    )
    build_training_data(
        kb, again, halueval_dir=folder, halueval_kb=halueval_kb, abstain_fraction=0.5
    )
    assert again.read_bytes() == out.read_bytes()


def test_thread_split_and_accepted_reply():
    authors = ["Ana", "Bo", "Ana", "Cy"]
    text = "Ana: How?\n\nBo: Like this.\n\nMore detail.\n\nAna: thanks\n\nCy: Or that."
    assert thread_messages(text, authors) == [
        "How?",
        "Like this.\n\nMore detail.",
        "thanks",
        "Or that.",
    ]
    assert thread_messages(text, ["Bo", *authors[1:]]) is None
    messages = [{"author": a, "user": a[0], "reactions": {}} for a in authors]
    assert accepted_reply(messages) is None
    messages[3]["reactions"] = {"+1": 3}
    messages[1]["reactions"] = {"white_check_mark": 1}
    messages[2]["reactions"] = {"white_check_mark": 5}  # the asker's own "thanks" never counts
    assert accepted_reply(messages) == 1
    messages[1]["reactions"] = {}
    assert accepted_reply(messages) == 3


def test_a_halueval_reply_is_the_answer_then_the_sentence_that_states_it():
    passage = "Santini is a 1979 film. The Great Santini is an American drama film. It won."
    assert answer_reply("drama", passage, 2) == (
        "Drama [2]. The Great Santini is an American drama film [2]."
    )
    # No sentence of the passage says it (only inside a word): the cited answer alone.
    assert answer_reply("dram", passage, 1) == "Dram [1]."


def test_cite_ends_every_sentence_with_the_passage_number():
    assert cite("Arthur's Magazine", 2) == "Arthur's Magazine [2]."
    assert cite("Run it. Then restart [3]!", 1) == "Run it [1]. Then restart [1]!"


# ---------------------------------------------------------------- training


def _tiny_base(models_dir: Path) -> str:
    """A tiny random Llama (SmolLM2's architecture) with a byte-level tokenizer and a chat
    template, trained on nothing: fast enough for a test, loaded like any other folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = {t: i for i, t in enumerate(specials)}
    for byte in pre_tokenizers.ByteLevel.alphabet():
        vocab.setdefault(byte, len(vocab))
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        bos_token="<|im_start|>",
        additional_special_tokens=specials,
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    torch.manual_seed(0)
    folder = models_dir / "tiny-base"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return "tiny-base"


def _examples_file(path: Path) -> Path:
    examples = [
        {
            "source": "halueval",
            "id": f"q{i}",
            "question": f"Who founded Town{i}?",
            "messages": build_messages(f"Who founded Town{i}?", []),
            "reply": f"Ada{i} [1].",
            "gold": [1],
        }
        for i in range(6)
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in examples))
    return path


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize("method", ["full", "lora"])
def test_training_changes_the_weights_and_the_generator_loads_the_result(tmp_path, method):
    if method == "lora":
        pytest.importorskip("peft")
    models_dir = tmp_path / "models"
    base = _tiny_base(models_dir)
    data = _examples_file(tmp_path / "train.jsonl")
    config = TrainConfig(method=method, steps=3, batch_size=2, learning_rate=1e-2, warmup_steps=1)
    folder = train(
        data, "tiny-tuned", models_dir, base=base, config=config, device="cpu", show_progress=False
    )
    assert folder == models_dir / "tiny-tuned"
    before, after = _weights(models_dir / base), _weights(folder)
    assert set(before) == set(after)  # merged: a plain model, no adapter
    assert any(not torch.equal(before[k], after[k]) for k in before)
    info = json.loads((folder / INFO_FILE).read_text())
    assert info["steps"] == 3 and info["base"] == base and info["counts"] == {"halueval": 6}
    assert info["config"]["method"] == method and len(info["losses"]) == 3
    generator = TransformersGenerator("tiny-tuned", models_dir, device="cpu")
    assert isinstance(generator.generate(build_messages("Who founded Town1?", []), 4), str)


@pytest.mark.parametrize("units", ["bfloat16", "float32"])
def test_training_runs_in_bf16_autocast_only_where_the_hardware_has_bf16(
    tmp_path, monkeypatch, units
):
    monkeypatch.setattr(device, "fast_dtype", lambda where: units)
    models_dir = tmp_path / "models"
    base = _tiny_base(models_dir)
    config = TrainConfig(steps=2, batch_size=2, learning_rate=1e-2, warmup_steps=1)
    folder = train(
        _examples_file(tmp_path / "train.jsonl"),
        "tiny-mixed",
        models_dir,
        base=base,
        config=config,
        device="cpu",
        show_progress=False,
    )
    info = json.loads((folder / INFO_FILE).read_text())
    assert info["precision"] == ("bf16 autocast" if units == "bfloat16" else "fp32")
    before, after = _weights(models_dir / base), _weights(folder)
    # Mixed precision keeps fp32 master weights: what is saved is fp32, and it learned.
    assert all(t.dtype == torch.float32 for t in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path):
    models_dir = tmp_path / "models"
    base = _tiny_base(models_dir)
    data = _examples_file(tmp_path / "train.jsonl")
    config = TrainConfig(steps=4, batch_size=2, learning_rate=1e-2, warmup_steps=1)
    run = dict(base=base, config=config, device="cpu", show_progress=False)
    whole = train(data, "whole", models_dir, **run)
    assert train(data, "parts", models_dir, stop_after=2, **run) is None
    assert (models_dir.parent / "tune" / "parts" / "checkpoint.pt").is_file()
    parts = train(data, "parts", models_dir, **run)
    one = json.loads((whole / INFO_FILE).read_text())["losses"]
    two = json.loads((parts / INFO_FILE).read_text())["losses"]
    assert two == pytest.approx(one, abs=1e-3)
    assert not (models_dir.parent / "tune" / "parts" / "checkpoint.pt").exists()
    with pytest.raises(KbqaError, match="another run"):
        train(data, "parts2", models_dir, stop_after=1, **run)
        other = dict(run, config=TrainConfig(steps=4, batch_size=2, learning_rate=1e-3))
        train(data, "parts2", models_dir, **other)


@pytest.mark.slow
def test_a_few_steps_on_the_packaged_generator(tmp_path: Path):
    models_dir = tmp_path / "models"
    data = _examples_file(tmp_path / "train.jsonl")
    config = TrainConfig(steps=2, batch_size=2, learning_rate=1e-4, warmup_steps=1)
    folder = train(
        data,
        "smol-tuned",
        models_dir,
        base=TUNE_BASE,
        config=config,
        device="cpu",
        show_progress=False,
    )
    before = _weights(models_dir / TUNE_BASE)
    assert any(not torch.equal(before[k], v) for k, v in _weights(folder).items())
    generator = TransformersGenerator("smol-tuned", models_dir, device="cpu")
    assert generator.generate(build_messages("Who founded Town1?", []), 8)


@pytest.mark.slow  # a minute of subprocesses: the fast subset has a shorter cousin
def test_cli_builds_data_from_slack_trains_and_answers_with_the_result(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from kbqa.cli import cli

    home = tmp_path / "home"
    monkeypatch.setenv("KBQA_EMBEDDING_MODEL", "hash")
    monkeypatch.setenv("KBQA_SLACK_WORKSPACE", "larkspur")
    monkeypatch.setenv("KBQA_MIN_HIT_SCORE", "0.0")
    monkeypatch.setenv("KBQA_MIN_CONFIDENCE", "0.0")

    def kbqa(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    kbqa("ingest", str(ROOT / "examples" / "slack-export"))
    output = kbqa("tune", "data", "--no-halueval")
    slack = int(re.search(r"slack: (\d+)", output).group(1))
    lines = (home / "tune" / "train.jsonl").read_text().splitlines()
    assert slack >= 1 and len(lines) == slack
    monkeypatch.setenv("KBQA_GENERATOR_MODEL", _tiny_base(home / "models"))
    kbqa(
        "tune",
        "train",
        "--name",
        "mine",
        "--steps",
        "2",
        "--batch-size",
        "1",
        "--max-length",
        "8000",
    )
    info = json.loads((home / "models" / "mine" / INFO_FILE).read_text())
    assert info["steps"] == 2 and info["counts"] == {"slack": slack}
    answer = json.loads(kbqa("ask", "--model", "mine", "--json", "how do I deploy the tracker?"))
    assert answer["mode"] in ("generated", "extracted", "abstained")


def test_no_examples_is_refused_and_keeps_the_earlier_file(tmp_path: Path, settings):
    out = tmp_path / "train.jsonl"
    out.write_text('{"earlier": true}\n')
    empty = KnowledgeBase(settings, embedder=HashEmbedder())
    with pytest.raises(KbqaError, match="no training examples"):
        build_training_data(empty, out)
    assert out.read_text() == '{"earlier": true}\n'


def _record(kb, data, qid: str, **changes) -> dict:
    """An eval record (kbqa eval qa's answers-*.jsonl) of a right, wholly checked answer."""
    question = data.queries[qid]
    hits = kb.retriever.search(question, kb.settings.top_k)
    gold = sorted(data.qrels["train"][qid])
    n = 1 + [h.uri.rsplit(":", 1)[-1] for h in hits].index(gold[0])
    reference = data.answers[qid]["answer"]
    record = {
        "id": qid,
        "question": question,
        "reference": reference,
        "answerable": True,
        "gold": gold,
        "answer": f"The answer is {reference} [{n}].",
        "mode": "generated",
        "contains": True,
        "cited": gold,
        "retrieved": [h.uri.rsplit(":", 1)[-1] for h in hits],
        "dropped": [],
    }
    return record | changes


def test_own_answers_become_targets_only_when_right_cited_and_checked_whole(
    built, settings, tmp_path: Path
):
    from kbqa.assistant.answerer import Answerer
    from kbqa.tune.distill import distilled_examples, with_abstentions

    _, examples, data, out = built
    kb = KnowledgeBase(
        settings.replace(home=settings.home / "evals" / "halueval-qa"), embedder=HashEmbedder()
    )
    qids = [
        q
        for q in sorted(data.qrels["train"])
        if data.queries[q] in {e["question"] for e in examples}
    ]
    good = [q for q in qids if _record(kb, data, q)["gold"][0] in _record(kb, data, q)["retrieved"]]
    assert len(good) >= 2
    records = [
        _record(kb, data, good[0]),
        _record(kb, data, good[1], mode="extracted"),
        _record(kb, data, good[1], contains=False),
        _record(kb, data, good[1], dropped=[["x [2].", "not supported"]]),
        _record(kb, data, good[1], cited=["k-other"]),
        _record(kb, data, good[1], retrieved=["k-other"]),
    ]
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for r in records))

    kept, skipped = distilled_examples(kb, data, answers)

    assert [e["id"] for e in kept] == [good[0]]
    assert kept[0]["reply"] == records[0]["answer"]
    hits = kb.retriever.search(records[0]["question"], kb.settings.top_k)
    # The prompt is the answerer's own (shown and focused passages), and the gold one is cited.
    assert kept[0]["messages"] == Answerer(kb.retriever, None, kb.settings).messages(
        records[0]["question"], hits
    )
    assert f"[{kept[0]['gold'][0]}]" in kept[0]["reply"]
    assert skipped == {
        "extracted": 1,
        "lacks the reference": 1,
        "a sentence failed the check": 1,
        "cites another passage": 1,
        "retrieval differs from the evaluated run": 1,
    }

    mixed = with_abstentions(kept * 9, out, share=0.1)
    assert len(mixed) == 10 and sum(e["reply"] == ABSTAIN_REPLY for e in mixed) == 1
    with pytest.raises(KbqaError, match="abstention examples"):
        with_abstentions(kept * 900, out, share=0.5)


def test_an_evaluation_question_is_never_distilled(built, settings, tmp_path: Path):
    from kbqa.tune.distill import distilled_examples

    _, _, data, _ = built
    kb = KnowledgeBase(
        settings.replace(home=settings.home / "evals" / "halueval-qa"), embedder=HashEmbedder()
    )
    dev = next(iter(data.qrels["dev"]))
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"id": dev, "question": data.queries[dev]}) + "\n")
    with pytest.raises(KbqaError, match="not a training question"):
        distilled_examples(kb, data, answers)


def test_a_file_that_is_not_eval_answers_is_refused_with_its_line(built, settings, tmp_path: Path):
    from kbqa.tune.distill import distilled_examples

    _, _, data, _ = built
    kb = KnowledgeBase(
        settings.replace(home=settings.home / "evals" / "halueval-qa"), embedder=HashEmbedder()
    )
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"question": "no id"}\n')
    with pytest.raises(KbqaError, match=r"answers.jsonl:1: not an answer record"):
        distilled_examples(kb, data, answers)
