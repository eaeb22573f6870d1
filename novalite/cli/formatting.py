"""Output of command results: tables for people, json/yaml/value for scripts."""

import json
import sys

import prettytable
import yaml

FORMATS = ('table', 'json', 'yaml', 'value')


class Listing:
    """Rows of a list command: column headings plus one tuple per item."""

    def __init__(self, columns, rows):
        self.columns = list(columns)
        self.rows = [tuple(r) for r in rows]


class Record:
    """One object of a show command: ordered field -> value."""

    def __init__(self, fields: dict):
        self.fields = dict(fields)


def add_arguments(parser):
    group = parser.add_argument_group('output formatting')
    group.add_argument('-f', '--format', choices=FORMATS, default='table',
                       help='Output format (default: table).')
    group.add_argument('-c', '--column', action='append', default=[], metavar='COLUMN',
                       dest='columns',
                       help='Show only this column (repeatable; case-insensitive).')


def select(columns, wanted):
    """Indexes of ``wanted`` columns (case-insensitive; '_' and ' ' are equal)."""
    def key(name):
        return name.lower().replace('_', ' ').replace('-', ' ')
    index = {key(c): i for i, c in enumerate(columns)}
    picked = []
    for name in wanted:
        if key(name) not in index:
            from novalite.cli.client import CommandError
            raise CommandError(f'No column {name!r}; columns are: ' + ', '.join(columns))
        picked.append(index[key(name)])
    return picked


def text(value, none='-') -> str:
    """A cell for a table or a value line."""
    if value is None:
        return none
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (dict, list)):
        if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
            return ', '.join(str(v) for v in value)
        return json.dumps(value, sort_keys=True)
    return str(value)


def _plain(value):
    """Values for json/yaml: keep structures, make everything else JSON-safe."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def render(result, fmt='table', columns=(), out=None):
    out = out or sys.stdout
    if result is None:
        return
    if isinstance(result, Listing):
        heads, rows = result.columns, result.rows
        if columns:
            picked = select(heads, columns)
            heads = [heads[i] for i in picked]
            rows = [tuple(r[i] for i in picked) for r in rows]
        out.write(render_listing(heads, rows, fmt))
    elif isinstance(result, Record):
        fields = result.fields
        if columns:
            names = list(fields)
            fields = {names[i]: fields[names[i]] for i in select(names, columns)}
        out.write(render_record(fields, fmt))
    else:
        out.write(str(result) + '\n')
    out.flush()


def render_listing(columns, rows, fmt) -> str:
    items = [_plain(dict(zip(columns, r, strict=True))) for r in rows]
    if fmt == 'json':
        return json.dumps(items, indent=2) + '\n'
    if fmt == 'yaml':
        return yaml.safe_dump(items, default_flow_style=False, sort_keys=False)
    if fmt == 'value':
        return ''.join(' '.join(text(v, '') for v in r) + '\n' for r in rows)
    table = prettytable.PrettyTable(columns)
    table.align = 'l'
    for row in rows:
        table.add_row([text(v) for v in row])
    return table.get_string() + '\n'


def render_record(fields: dict, fmt) -> str:
    if fmt == 'json':
        return json.dumps(_plain(fields), indent=2) + '\n'
    if fmt == 'yaml':
        return yaml.safe_dump(_plain(fields), default_flow_style=False, sort_keys=False)
    if fmt == 'value':
        return ''.join(text(v, '') + '\n' for v in fields.values())
    table = prettytable.PrettyTable(['Property', 'Value'])
    table.align = 'l'
    for key, value in fields.items():
        table.add_row([key, text(value)])
    return table.get_string() + '\n'


def human_bytes(num) -> str:
    if num is None:
        return '-'
    value = float(num)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(value) < 1024 or unit == 'TiB':
            return f'{value:.0f} {unit}' if unit == 'B' else f'{value:.1f} {unit}'
        value /= 1024
    return f'{value:.1f} TiB'


POWER_STATES = {0: 'NOSTATE', 1: 'Running', 3: 'Paused', 4: 'Shutdown', 6: 'Crashed',
                7: 'Suspended'}


def power_state(value) -> str:
    if value is None:
        return '-'
    return POWER_STATES.get(value, str(value))
