"""`kbqa tune data` keeps feedback given in private channels and DMs out by default: a tuned
model could repeat it anywhere."""

from conftest import ROOT
from kbqa.app import KnowledgeBase
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.tune.data import feedback_examples

GRAFANA_THREAD = "https://larkspur.slack.com/archives/C05ENGHELP/p1794244440004137"


def test_feedback_from_private_channels_and_dms_is_left_out_unless_asked_for(settings):
    kb = KnowledgeBase(settings.replace(slack_workspace="larkspur"), embedder=HashEmbedder())
    kb.ingest([ROOT / "examples" / "slack-export"])
    answer = "Run `larkctl access grant grafana-staging --user you` [1]."
    given = {
        "public": dict(channel="C05ENGHELP", private=False),
        "private": dict(channel="C09SECRET", private=True),
        "dm": dict(channel="D0DM", private=True),
        "old-slack-row": dict(channel="C05ENGHELP", private=None),  # privacy never recorded
        "web": dict(channel="web", private=False),
    }
    ids = {}
    for name, where in given.items():
        ids[name] = kb.feedback(
            1,
            f"How do I get staging Grafana access? ({name})",
            answer,
            [{"uri": GRAFANA_THREAD}],
            user="U1",
            **where,
        )
    kept = {e["id"] for e in feedback_examples(kb, 4)}
    assert kept == {f"feedback:{ids['public']}", f"feedback:{ids['web']}"}
    everything = {e["id"] for e in feedback_examples(kb, 4, include_private=True)}
    assert everything == {f"feedback:{i}" for i in ids.values()}
