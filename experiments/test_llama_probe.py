"""The experiments' llama.cpp probes on the packaged SmolLM2 model (slow: it loads the model).

    python -m pytest experiments/ -p no:cacheprovider

Not part of `make test` (its tests are under tests/); moved here with the probes from
tests/test_generation.py when they left kbqa's generator."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import llama_probe

from kbqa.assistant import generator as gen

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
def test_next_token_probabilities_rank_the_greedy_first_token_first(llama):
    probabilities = llama_probe.next_token_probabilities(llama, MESSAGES, top=5)
    assert 1 <= len(probabilities) <= 5
    assert all(0 < p <= 1 for p in probabilities.values()) and sum(probabilities.values()) <= 1.001
    likeliest = max(probabilities, key=probabilities.get)
    assert likeliest.strip() == llama.generate(MESSAGES, 1)  # greedy decoding takes it
    assert llama_probe.next_token_probabilities(llama, MESSAGES, top=5) == probabilities


@pytest.mark.slow
def test_generate_scored_gives_the_greedy_text_with_each_tokens_log_probability(llama):
    text, scored = llama_probe.generate_scored(llama, MESSAGES, 24)
    assert text == llama.generate(MESSAGES, 24)
    assert scored and "".join(token for token, _ in scored).strip() == text
    assert all(logprob <= 0 for _, logprob in scored)
    # Greedy decoding takes the likeliest token: its probability is the first one's top.
    first = llama_probe.next_token_probabilities(llama, MESSAGES, top=5)
    assert math.isclose(math.exp(scored[0][1]), max(first.values()), rel_tol=1e-3)


@pytest.mark.slow
def test_samples_repeat_with_their_seed_and_differ_across_seeds(llama):
    def sample(seed: int) -> str:
        asked = [{"role": "user", "content": "Write one sentence about a harbour."}]
        return llama_probe.sample(llama, asked, seed=seed, temperature=1.2, max_new_tokens=24)

    first = sample(1)
    assert first and sample(1) == first
    assert {sample(2), sample(3), sample(4)} - {first}
    assert llama.generate(MESSAGES, 24) == llama.generate(MESSAGES, 24)  # greedy stays greedy
