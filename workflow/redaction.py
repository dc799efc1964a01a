"""What may be stored or logged in plain: text with email addresses taken out, and the values a
database or validation error repeats.

Names and the free text of incidents are never passed to a log call in the first place; these
catch what third-party messages (SMTP answers, database and validation errors) may echo back.
"""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"<?[^\s<>@,;]+@[^\s<>@,;]+>?")
# PostgreSQL repeats the offending values of a constraint: "DETAIL:  Key (username)=(hanna) already exists."
_KEY_VALUES = re.compile(r"(Key \([^)]*\))=\(.*?\)(?= already exists| is not present| conflicts|\s*$)", re.MULTILINE)
# pydantic repeats the value it refused: "[type=string_type, input_value='Jan de Vries', input_type=int]";
# FastAPI's validation errors carry it as a dict: "{'type': …, 'msg': …, 'input': {'summary': …}}"
_INPUT_VALUE = re.compile(r"input_value=.*?, input_type=")
_INPUT_ITEM = re.compile(r"'input': .*?(?=, '(?:ctx|url)': |\}\s*$)", re.MULTILINE)


def without_addresses(text: str) -> str:
    """``text`` with every email address replaced: what may be stored in a plain column."""
    return _ADDRESS.sub("<address>", text)


def for_log(text: str) -> str:
    """``text`` as it may go into a log: no addresses, no values a database or validation error repeated."""
    text = _INPUT_ITEM.sub("'input': …", _INPUT_VALUE.sub("input_value=…, input_type=", text))
    return without_addresses(_KEY_VALUES.sub(r"\1=(…)", text))
