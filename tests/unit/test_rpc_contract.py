"""The RPC surface is a contract: each manager serves exactly its rpcapi's methods, takes
its version from the rpcapi, and the RPC server dispatches nothing else."""

import ast
import inspect

import oslo_messaging as messaging
import pytest

from novalite import rpc, service
from novalite.compute import manager as compute_manager
from novalite.compute import rpcapi as compute_rpcapi
from novalite.conductor import host_requests
from novalite.conductor import manager as conductor_manager
from novalite.conductor import rpcapi as conductor_rpcapi
from novalite.scheduler import manager as scheduler_manager
from novalite.scheduler import rpcapi as scheduler_rpcapi

PAIRS = [(compute_rpcapi, compute_manager.ComputeManager),
         (conductor_rpcapi, conductor_manager.ConductorManager),
         (scheduler_rpcapi, scheduler_manager.SchedulerManager)]
IDS = ['compute', 'conductor', 'scheduler']
_SENDERS = {'call', 'cast', '_call', '_cast', 'method', 'call_while_alive', 'call_watching'}


def _sent_methods(module) -> set[str]:
    """Method names the client module puts on the wire."""
    names = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Call) and getattr(node.func, 'attr', getattr(
                node.func, 'id', None)) in _SENDERS:
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
    return names


def _served_methods(manager_cls) -> set[str]:
    hooks = {name for name, _ in inspect.getmembers(service.Manager, inspect.isfunction)}
    out = set()
    for name, fn in inspect.getmembers(manager_cls, inspect.isfunction):
        if name.startswith('_') or hasattr(fn, '_periodic_spacing'):
            continue
        if name in hooks and name != 'ping':
            continue
        out.add(name)
    return out


@pytest.mark.parametrize('rpcapi,manager_cls', PAIRS, ids=IDS)
def test_manager_serves_exactly_the_rpcapi(rpcapi, manager_cls):
    assert set(rpcapi.METHODS) == _sent_methods(rpcapi)
    assert set(rpcapi.METHODS) == _served_methods(manager_cls) - {
        'reconcile_instances'}  # compute's start-up reconcile, called by after_start
    assert manager_cls.rpc_methods is rpcapi.METHODS


@pytest.mark.parametrize('rpcapi,manager_cls', PAIRS, ids=IDS)
def test_manager_version_is_the_rpcapi_version(rpcapi, manager_cls):
    assert manager_cls.target.version == rpcapi.VERSION
    assert f'  {rpcapi.VERSION} - ' in rpcapi.__doc__


def test_conductor_host_methods_take_the_calling_host():
    for name in host_requests.HOST_METHODS:
        assert name in conductor_rpcapi.METHODS
        assert hasattr(conductor_manager.ConductorManager, name), name
        params = list(inspect.signature(getattr(host_requests, name)).parameters)
        assert params[0] == 'caller', name
        assert hasattr(conductor_rpcapi.HostConductor, name), name


def test_access_policy_blocks_undeclared_methods():
    class Endpoint:
        rpc_methods = ('ping',)
        target = messaging.Target(version='1.0')

        def ping(self, context):
            return 'pong'

        def helper(self, context):
            return 'secret'

    policy = rpc.DeclaredMethodsPolicy()
    assert policy.is_allowed(Endpoint(), 'ping')
    assert not policy.is_allowed(Endpoint(), 'helper')
    dispatcher = messaging.RPCDispatcher([Endpoint()], None, rpc.DeclaredMethodsPolicy)
    with pytest.raises(messaging.NoSuchMethod):
        dispatcher.dispatch(_incoming('helper'))
    assert dispatcher.dispatch(_incoming('ping')) == 'pong'


def _incoming(method):
    class Incoming:
        ctxt = {}
        client_timeout = None
        message = {'method': method, 'args': {}, 'version': '1.0'}
    return Incoming()
