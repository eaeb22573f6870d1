"""``novalite``: the command line client of the compute API (argument parsing and
dispatch; every error becomes one ``ERROR (...)`` line and exit status 1)."""

import argparse
import sys
import traceback

from novalite.cli import client as api_client
from novalite.cli import commands, formatting

EPILOG = """\
connection (options win over the environment):
  --os-endpoint / OS_ENDPOINT / OS_COMPUTE_ENDPOINT   compute endpoint (http://HOST:8774[/v2.1])
  --os-token / OS_TOKEN                               noauth2 token 'user:project'
  --os-auth-type / OS_AUTH_TYPE                       admin_token (default), noauth, none
  --os-compute-api-version / OS_COMPUTE_API_VERSION   microversion (default: negotiated)
  NOVALITE_URL=http://user:project@HOST:8774          endpoint and token in one variable
  nothing set: http://127.0.0.1:8774 with token admin:admin
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='novalite', description='Command line client of the novalite compute API.',
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--os-endpoint', metavar='URL', help='Compute API endpoint.')
    parser.add_argument('--os-token', metavar='TOKEN', help="Token ('user:project').")
    parser.add_argument('--os-auth-type', metavar='TYPE',
                        help='admin_token (default), noauth or none.')
    parser.add_argument('--os-compute-api-version', metavar='VERSION',
                        help="Microversion, e.g. 2.80 or 'latest' (default: the highest "
                             'both sides support).')
    parser.add_argument('--timeout', type=float, default=None, metavar='SECONDS',
                        help='HTTP request timeout (default 60).')
    parser.add_argument('--debug', action='store_true',
                        help='Print every request and response on stderr.')
    common = argparse.ArgumentParser(add_help=False)
    formatting.add_arguments(common)
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.register_all(sub, [common])
    return parser


def main(argv=None, stdout=None, stderr=None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:   # --help or a usage error: argparse already printed it
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, 'func', None):
        parser.print_help(stdout)
        return 2
    args.stdout, args.stderr = stdout, stderr
    cli = None
    try:
        settings = api_client.resolve_settings(args)
        cli = api_client.Client(settings, stderr=stderr)
        result = args.func(cli, args)
        formatting.render(result, args.format, args.columns, stdout)
        return 0
    except api_client.CommandError as exc:
        stderr.write(exc.render() + '\n')
        return 1
    except KeyboardInterrupt:
        stderr.write('\nInterrupted. Any request already accepted goes on on the server.\n')
        return 130
    except Exception as exc:  # a bug of ours must still not end in a bare traceback
        if getattr(args, 'debug', False):
            traceback.print_exc(file=stderr)
        stderr.write(f'ERROR ({type(exc).__name__}): {exc} (run with --debug for the '
                     'traceback)\n')
        return 1
    finally:
        if cli is not None:
            cli.close()


if __name__ == '__main__':
    sys.exit(main())
