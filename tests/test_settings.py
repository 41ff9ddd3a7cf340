from pathlib import Path

import pytest

from kbqa.errors import ConfigError
from kbqa.settings import Settings


def test_layers_apply_in_order_defaults_file_environment_arguments(tmp_path: Path):
    config = tmp_path / "kbqa.toml"
    config.write_text('top_k = 7\nmin_hit_score = 0.2\n[kbqa]\nembedding_model = "from-file"\n')
    env = {"KBQA_TOP_K": "9", "KBQA_HOME": str(tmp_path / "h"), "OTHER": "x"}

    s = Settings.load(config_file=config, environ=env, min_hit_score=0.5)

    assert s.top_k == 9  # environment beats the file
    assert s.min_hit_score == 0.5  # an argument beats everything
    assert s.embedding_model == "from-file"  # the file beats the default
    assert s.home == tmp_path / "h"
    assert s.max_new_tokens == Settings().max_new_tokens  # untouched default


def test_database_url_defaults_to_sqlite_under_home_and_can_be_overridden(tmp_path: Path):
    s = Settings.load(config_file=tmp_path / "none.toml", environ={"KBQA_HOME": "/x"})
    assert s.db_url == "sqlite:////x/kbqa.db"
    relative = Settings.load(config_file=tmp_path / "none.toml", environ={"KBQA_HOME": ".kbqa"})
    assert relative.db_url == f"sqlite:///{Path.cwd() / '.kbqa' / 'kbqa.db'}"
    s = Settings.load(environ={"KBQA_DATABASE_URL": "postgresql://u@h/db"})
    assert s.db_url == "postgresql://u@h/db"


def test_unknown_key_in_file_names_the_file_and_key(tmp_path: Path):
    config = tmp_path / "kbqa.toml"
    config.write_text("topk = 3\n")
    with pytest.raises(
        ConfigError, match=r"kbqa.toml: unknown setting 'topk' \(did you mean 'top_k'\?\)"
    ):
        Settings.load(config_file=config, environ={})
    config.write_text("colour = 3\n")  # nothing near it: no guess
    with pytest.raises(ConfigError, match=r"unknown setting 'colour'$"):
        Settings.load(config_file=config, environ={})


def test_a_near_miss_in_the_environment_is_warned_about_and_others_are_not(caplog):
    with caplog.at_level("WARNING", logger="kbqa.settings"):
        s = Settings.load(environ={"KBQA_TOPK": "3", "KBQA_TEST_POSTGRES_URL": "x"})
    assert s.top_k == Settings().top_k  # ignored, as before
    assert [r.getMessage() for r in caplog.records] == [
        "KBQA_TOPK is not a setting (did you mean 'top_k'?): it is ignored"
    ]


def test_bad_value_type_is_a_one_line_error_in_plain_words():
    with pytest.raises(
        ConfigError, match=r"^KBQA_TOP_K: setting 'top_k' must be a whole number, got 'many'"
    ):
        Settings.load(environ={"KBQA_TOP_K": "many"})
    with pytest.raises(ConfigError, match=r"'generator_draft' must be true or false, got 'maybe'"):
        Settings.load(environ={"KBQA_GENERATOR_DRAFT": "maybe"})


def test_bad_choice_says_where_it_was_set_and_what_it_was(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^KBQA_ON_UNSUPPORTED: .*on_unsupported.*got 'guess'"):
        Settings.load(environ={"KBQA_ON_UNSUPPORTED": "guess"})
    config = tmp_path / "kbqa.toml"
    config.write_text('retrieval_mode = "semantic"\n')
    with pytest.raises(ConfigError, match=r"kbqa.toml: setting 'retrieval_mode' must be one of "):
        Settings.load(config_file=config, environ={})


def test_broken_toml_is_reported(tmp_path: Path):
    config = tmp_path / "kbqa.toml"
    config.write_text("top_k = = 3")
    with pytest.raises(ConfigError, match="cannot read settings"):
        Settings.load(config_file=config, environ={})


def test_retrieval_defaults_and_their_limits():
    s = Settings()
    assert s.rerank_model == "" and s.bm25_stemmer == "english"
    for key, bad in [("fusion_alpha", "1.5"), ("rrf_k", "0"), ("rerank_depth", "0")]:
        with pytest.raises(ConfigError, match=key):
            Settings.load(environ={f"KBQA_{key.upper()}": bad})
    assert Settings.load(environ={"KBQA_RERANK_MODEL": "/models/x"}).rerank_model == "/models/x"


def test_thresholds_outside_their_range_are_refused_by_name():
    # 50 for 0.50 would make kbqa abstain on every question without saying why.
    for key, bad in (
        ("min_confidence", 50),
        ("min_quote_confidence", -0.1),
        ("min_hit_score", 1.5),
    ):
        with pytest.raises(ConfigError, match=f"'{key}' must be between"):
            Settings.load(environ={f"KBQA_{key.upper()}": str(bad)})
    # Their edges are allowed, and -inf switches a gate off (the ungated evaluation).
    assert Settings().replace(min_confidence=1.0, min_hit_score=-1.0).min_confidence == 1.0
    assert Settings().replace(min_confidence=float("-inf")).min_confidence == float("-inf")
