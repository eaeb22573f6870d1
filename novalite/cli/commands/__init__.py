"""Sub-commands of ``novalite``, one module per resource. Each module's ``register``
adds its parsers; a command function takes (client, args) and returns something for
``formatting.render`` (or None)."""

from novalite.cli import waiter

MODULES = ('servers', 'moves', 'migrations', 'actions', 'flavors', 'hypervisors',
           'services', 'server_groups', 'drains', 'versions')


def register_all(subparsers, common_parents):
    import importlib
    for name in MODULES:
        module = importlib.import_module(f'novalite.cli.commands.{name}')
        module.register(subparsers, common_parents)


def wait_for(client, args, server, op, request_id, known_migrations=None):
    """Follow the operation when ``--poll`` was given; the final server or None."""
    if not getattr(args, 'poll', False):
        return None
    return waiter.Waiter(client, server, op, request_id=request_id,
                         known_migrations=known_migrations, timeout=args.poll_timeout,
                         stream=args.stderr).wait()


def accepted(args, verb, server, request_id):
    """The one line an asynchronous request prints when not polling."""
    if getattr(args, 'poll', False):
        return
    name = server.get('name') or server['id']
    args.stdout.write(f'Request to {verb} server {name} has been accepted. '
                      f'(Request-ID: {request_id})\n')
