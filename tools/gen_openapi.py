#!/usr/bin/env python3
"""Write (or with --check, verify) novalite/api/openapi.json from the API's schemas."""

import argparse
import difflib
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--check', action='store_true',
                        help='exit 1 if the committed document is out of date')
    args = parser.parse_args(argv)
    from novalite.api import openapi
    text = openapi.dumps(openapi.build())
    try:
        with open(openapi.PATH) as f:
            current = f.read()
    except OSError:
        current = ''
    if args.check:
        if current == text:
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            current.splitlines(True), text.splitlines(True), 'committed', 'generated'))
        print('%s is out of date: run tools/gen_openapi.py' % openapi.PATH,
              file=sys.stderr)
        return 1
    if current != text:
        with open(openapi.PATH, 'w') as f:
            f.write(text)
        print('wrote %s' % openapi.PATH)
    return 0


if __name__ == '__main__':
    sys.exit(main())
