"""Client side of the scheduler RPC API.

Version history:
  1.0 - select_destinations
  1.1 - ping
"""

import oslo_messaging as messaging

from novalite import rpc
from novalite.conf import CONF

TOPIC = 'scheduler'
VERSION = '1.1'

SELECT_ATTEMPT_TIMEOUT = 4  # seconds one select_destinations attempt may take (a decision takes ms)

# Everything a scheduler serves; its RPC server dispatches nothing else.
METHODS = ('ping', 'select_destinations')


class SchedulerAPI:
    def __init__(self, url: str | None = None):
        target = messaging.Target(topic=TOPIC, version=VERSION)
        self.client = rpc.get_client(target, version_cap=VERSION, url=url)

    def ping(self, ctxt, timeout=2):
        return self.client.prepare(timeout=timeout).call(ctxt, 'ping')

    def select_destinations(self, ctxt, request_spec: dict, instance_uuids: list,
                            return_alternates: bool = True, claim: bool = True) -> list:
        """Hosts for each instance: [[selected, alternate, ...], ...].

        Each entry is {'host', 'nodename', 'compute_node_uuid'}; with ``claim`` the
        selected host already holds the instance's allocation. Raises NoValidHost with
        the per-filter explanation.
        """
        # A decision takes milliseconds: an attempt that gets no answer in a few seconds
        # went to a scheduler that died with it (or is stuck), and is sent again while
        # some scheduler answers a ping. Sending it twice is safe: a claim replaces the
        # instance's previous claim.
        return rpc.call_while_alive(
            self.client, ctxt, 'select_destinations', timeout=CONF.long_rpc_timeout,
            alive=lambda: rpc.is_alive(self.client, ctxt, TOPIC),
            attempt_timeout=min(SELECT_ATTEMPT_TIMEOUT, CONF.call_attempt_timeout),
            request_spec=request_spec, instance_uuids=instance_uuids,
            return_alternates=return_alternates, claim=claim)
