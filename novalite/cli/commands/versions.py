"""API versions the server offers, and the one this client negotiates."""

from novalite.cli.client import CLIENT_MAX_VERSION, APIError, format_version
from novalite.cli.formatting import Listing


def do_version_list(client, args):
    resp, request_id = client._send('GET', client.root_url + '/')
    if resp.status_code >= 400:
        raise APIError(resp.status_code, resp.text[:300], request_id, 'GET', client.root_url)
    versions = resp.json().get('versions', [])
    if args.format == 'table':
        args.stdout.write(f'Client supported API versions: 2.1 to '
                          f'{format_version(CLIENT_MAX_VERSION)}; this session uses '
                          f'{format_version(client.version)}\n')
    return Listing(['Id', 'Status', 'Updated', 'Min Version', 'Max Version'],
                   [(v.get('id'), v.get('status'), v.get('updated'), v.get('min_version'),
                     v.get('version')) for v in versions])


def register(sub, parents):
    p = sub.add_parser('version-list', parents=parents,
                       help='API versions offered by the server.')
    p.set_defaults(func=do_version_list)
