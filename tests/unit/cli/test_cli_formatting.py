"""Tables, json, yaml and value output of the CLI."""

import io
import json

import pytest
import yaml

from novalite.cli import formatting
from novalite.cli.client import CommandError
from novalite.cli.formatting import Listing, Record

LISTING = Listing(['ID', 'Name', 'Task State'], [('1', 'a', None), ('2', 'b', 'migrating')])


def _render(result, fmt='table', columns=()):
    out = io.StringIO()
    formatting.render(result, fmt, columns, out)
    return out.getvalue()


def test_table_shows_dash_for_none():
    text = _render(LISTING)
    assert '| ID | Name | Task State |' in text
    assert '| 1  | a    | -          |' in text


def test_json_and_yaml_keep_types():
    assert json.loads(_render(LISTING, 'json')) == [
        {'ID': '1', 'Name': 'a', 'Task State': None},
        {'ID': '2', 'Name': 'b', 'Task State': 'migrating'}]
    assert yaml.safe_load(_render(LISTING, 'yaml'))[1]['Task State'] == 'migrating'


def test_value_format_and_column_selection():
    assert _render(LISTING, 'value') == '1 a \n2 b migrating\n'
    assert _render(LISTING, 'value', ['name']) == 'a\nb\n'
    assert _render(LISTING, 'value', ['task_state', 'ID']) == ' 1\nmigrating 2\n'


def test_unknown_column_is_an_error():
    with pytest.raises(CommandError, match="No column 'nope'"):
        _render(LISTING, 'table', ['nope'])


def test_record_formats():
    record = Record({'id': 'x', 'flavor': {'ram': 512}, 'tags': ['a', 'b'], 'locked': False})
    table = _render(record)
    assert '| Property | Value        |' in table
    assert '| flavor   | {"ram": 512} |' in table
    assert '| tags     | a, b         |' in table
    assert json.loads(_render(record, 'json'))['flavor'] == {'ram': 512}
    assert _render(record, 'value', ['id', 'locked']) == 'x\nFalse\n'


def test_human_bytes_and_power_state():
    assert formatting.human_bytes(None) == '-'
    assert formatting.human_bytes(512) == '512 B'
    assert formatting.human_bytes(536870912) == '512.0 MiB'
    assert formatting.human_bytes(1073741824) == '1.0 GiB'
    assert formatting.power_state(1) == 'Running'
    assert formatting.power_state(4) == 'Shutdown'
    assert formatting.power_state(None) == '-'
