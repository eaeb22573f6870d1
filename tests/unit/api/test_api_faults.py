"""The exception -> HTTP status table and fault bodies."""

import json

import pytest

from novalite import exception
from novalite.api import faults


@pytest.mark.parametrize('exc,code', [
    (exception.InstanceNotFound(instance_id='x'), 404),
    (exception.FlavorNotFound(flavor_id='x'), 404),
    (exception.CannotResizeToSameFlavor(), 400),
    (exception.ValidationError(detail='x'), 400),
    (exception.NoValidHost(reason=''), 400),
    (exception.InstanceIsLocked(instance_uuid='x'), 409),
    (exception.InstanceInvalidState(action='a', instance_uuid='x', attr='vm_state',
                                    state='s'), 409),
    (exception.UnexpectedTaskStateError(instance_uuid='x', expected=None, actual='y'), 409),
    (exception.FlavorExists(field='id', value='1'), 409),
    (exception.OverQuota(overs='cores', req=1, used=1, allowed=1), 403),
    (exception.PolicyNotAuthorized(action='x'), 403),
])
def test_status_for_domain_exceptions(exc, code):
    assert faults.status_for(exc) == code


@pytest.mark.parametrize('exc', [RuntimeError('x'), KeyError('x'),
                                 exception.NovaliteException('x'),
                                 exception.InsufficientResources(
                                     amount=1, resource_class='VCPU', provider='p',
                                     free=0)])
def test_unexpected_exceptions_have_no_status(exc):
    assert faults.status_for(exc) is None


@pytest.mark.parametrize('code,name', [(400, 'badRequest'), (403, 'forbidden'),
                                       (404, 'itemNotFound'), (405, 'badMethod'),
                                       (409, 'conflictingRequest'), (415, 'badMediaType'),
                                       (500, 'computeFault'), (503, 'serviceUnavailable')])
def test_fault_body_names(code, name):
    resp = faults.fault_response(code, 'msg')
    assert resp.status_int == code
    assert json.loads(resp.body) == {name: {'code': code, 'message': 'msg'}}


def test_over_limit_retry_after():
    resp = faults.fault_response(429, 'slow down', {'Retry-After': 5})
    assert json.loads(resp.body)['overLimit']['retryAfter'] == '5'
    assert resp.headers['Retry-After'] == '5'


def test_remap_changes_status_inside_handler():
    with pytest.raises(faults.HTTPError) as err:
        with faults.remap({exception.FlavorNotFound: 400}):
            raise exception.FlavorNotFound(flavor_id='9')
    assert err.value.code == 400
    assert 'Flavor 9 could not be found.' in err.value.message


def test_remap_leaves_other_exceptions_alone():
    with pytest.raises(exception.InstanceNotFound):
        with faults.remap({exception.FlavorNotFound: 400}):
            raise exception.InstanceNotFound(instance_id='x')
