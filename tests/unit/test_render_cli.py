"""`dialogue render`: what a marketer sees before a message goes out."""

import json
from pathlib import Path

from dialogue.local import cli

ROOT = Path(__file__).resolve().parents[2]


def test_render_previews_a_template_for_a_customer(capsys) -> None:
    code = cli.main(["render", str(ROOT / "examples/templates/birthday-wishes.json"),
                     "--customer", str(ROOT / "examples/customers/frank.json")])

    out = capsys.readouterr().out
    assert code == 0
    assert "Happy birthday, Frank!" in out and "1 SMS part(s)" in out


def test_render_says_why_a_message_would_be_held_back(tmp_path: Path, capsys) -> None:
    poor = tmp_path / "poor.json"
    poor.write_text(json.dumps({"customer": {"email": "x@example.com"}}))

    code = cli.main(["render", str(ROOT / "examples/templates/order-coupon.json"),
                     "--customer", str(poor)])

    assert code == 1
    assert "held back: template 'order-coupon': 'coupon' is undefined" in capsys.readouterr().err


def test_validate_renders_templates_and_names_file_path_and_reason(tmp_path: Path, capsys) -> None:
    for folder in ("activities", "segments", "templates"):
        (tmp_path / folder).mkdir()
    (tmp_path / "activities" / "bday.json").write_text(json.dumps({
        "id": "bday", "name": "Birthday", "elements": [
            {"id": "born", "type": "birthday", "next": "mail"},
            {"id": "mail", "type": "send_message", "channel": "email", "template": "card"}]}))
    (tmp_path / "templates" / "card.json").write_text(json.dumps({
        "id": "card", "channel": "email", "subject": "Happy birthday",
        "text": "{{ event.cart.value }} {{ unsubscribe_url }}"}))
    (tmp_path / "templates" / "boom.json").write_text(json.dumps({
        "id": "boom", "channel": "email", "subject": "x", "text": "{{ 'x' * 30000000 }}"}))

    code = cli.main(["validate", str(tmp_path / "activities")])

    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert (f"{tmp_path}/templates/boom.json : $.text : template 'boom': the repeated value "
            "would be longer than 200,000 characters") in out
    [bday] = [line for line in out if line.startswith(f"{tmp_path}/activities/bday.json")]
    assert bday.startswith(f"{tmp_path}/activities/bday.json : $.elements[1].template : "
                           "template 'card': 'dict object' has no attribute 'cart'")
    assert "after the 'birthday' trigger; its event has: birthday, date, type" in bday
