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
