"""Admission of live migrations under their policies' limits (pure: recorded rows in,
decisions out)."""

import pytest

from novalite.conductor import admission, policies
from novalite.conf import CONF

LIVE = 'live-migration'


def _known(**default):
    return policies.parse({'policies': {'default': default,
                                        'urgent': {'priority': 10}}},
                          policies.builtin_default(CONF))


def _mig(id_, src, dst, status='running', driver=None, drain=None, policy='default'):
    return {'id': id_, 'migration_type': LIVE, 'status': status, 'task_driver': driver,
            'source_compute': src, 'dest_compute': dst, 'drain_id': drain,
            'policy': policy}


def _waiting(id_, src, dst, **kw):
    return _mig(id_, src, dst, status='queued', driver='conductor1', **kw)


def test_holding_moves_count_and_pre_checks_do_not():
    known = _known(max_outbound_per_host=1)
    rows = [_mig(1, 'a', 'b'), _mig(2, 'c', None, status='accepted', driver='conductor1')]
    admitted, blocked, counts = admission.plan(rows, known, _mig(3, 'a', 'c', 'accepted',
                                                                 'conductor1'))
    assert admitted == set() and 'leaving a' in blocked[3]
    admitted, _, _ = admission.plan(rows, known, _mig(3, 'c', 'a', 'accepted', 'x'))
    assert admitted == {3}


def test_waiting_moves_go_first_and_do_not_block_other_hosts():
    known = _known(max_inbound_per_host=1, max_parallel=3)
    rows = [_mig(1, 'a', 'b'), _waiting(2, 'c', 'b'), _waiting(3, 'c', 'd'),
            _waiting(4, 'e', 'f')]
    admitted, blocked, counts = admission.plan(rows, known, _mig(5, 'g', 'h', 'accepted',
                                                                 'x'))
    assert admitted == {3, 4} and set(blocked) == {2, 5}
    assert 'entering b' in blocked[2] and 'in the cloud' in blocked[5]
    assert counts.total == 3


@pytest.mark.parametrize('order,first', [('fifo', 1), ('drains_first', 2),
                                         ('users_first', 1)])
def test_drains_against_users(conf, order, first):
    conf.set_override('admission_order', order, group='migration')
    known = _known(max_parallel=1)
    rows = [_waiting(1, 'a', 'b'), _waiting(2, 'c', 'd', drain=7)]
    assert admission.plan(rows, known)[0] == {first}


def test_a_policy_of_higher_priority_goes_first(conf):
    known = _known(max_parallel=1)
    rows = [_waiting(1, 'a', 'b'), _waiting(2, 'c', 'd', policy='urgent')]
    assert admission.plan(rows, known)[0] == {2}
