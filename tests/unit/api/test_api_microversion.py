"""Microversion header parsing and negotiation."""

import pytest
import webob

from novalite.api import microversion as mv


def _headers(**kw):
    return webob.Request.blank('/', headers=kw).headers


@pytest.mark.parametrize('text,expected', [('2.1', (2, 1)), ('2.10', (2, 10)),
                                           ('3.0', (3, 0)), (' 2.5 ', (2, 5))])
def test_parse_valid(text, expected):
    assert mv.parse(text) == expected


@pytest.mark.parametrize('text', ['2.01', '2', '2.', 'a.b', '0.1', '2.1.1', '', '-2.1'])
def test_parse_invalid(text):
    with pytest.raises(mv.InvalidVersion):
        mv.parse(text)


def test_absent_is_minimum(conf):
    assert mv.negotiate(_headers(), conf) == (2, 1)


def test_latest_is_maximum(conf):
    hdrs = _headers(**{'OpenStack-API-Version': 'compute latest'})
    assert mv.negotiate(hdrs, conf) == mv.MAX_VERSION


def test_new_header_wins_over_legacy(conf):
    hdrs = _headers(**{'OpenStack-API-Version': 'compute 2.50',
                       'X-OpenStack-Nova-API-Version': '2.20'})
    assert mv.negotiate(hdrs, conf) == (2, 50)


def test_legacy_header(conf):
    hdrs = _headers(**{'X-OpenStack-Nova-API-Version': '2.20'})
    assert mv.negotiate(hdrs, conf) == (2, 20)


def test_other_services_in_header_are_ignored(conf):
    hdrs = _headers(**{'OpenStack-API-Version': 'placement 1.30, compute 2.60'})
    assert mv.negotiate(hdrs, conf) == (2, 60)
    hdrs = _headers(**{'OpenStack-API-Version': 'placement 1.30'})
    assert mv.negotiate(hdrs, conf) == (2, 1)


@pytest.mark.parametrize('text', ['2.0', '3.0', '2.999'])
def test_out_of_range_is_unsupported(conf, text):
    with pytest.raises(mv.UnsupportedVersion):
        mv.negotiate(_headers(**{'OpenStack-API-Version': 'compute ' + text}), conf)


def test_config_caps_maximum(conf):
    conf.set_override('max_microversion', '2.60', group='api')
    assert mv.max_version(conf) == (2, 60)
    with pytest.raises(mv.UnsupportedVersion):
        mv.negotiate(_headers(**{'OpenStack-API-Version': 'compute 2.61'}), conf)
    hdrs = _headers(**{'OpenStack-API-Version': 'compute latest'})
    assert mv.negotiate(hdrs, conf) == (2, 60)


def test_response_headers():
    resp = webob.Response()
    mv.add_headers(resp, (2, 42))
    assert resp.headers['OpenStack-API-Version'] == 'compute 2.42'
    assert resp.headers['X-OpenStack-Nova-API-Version'] == '2.42'
    varies = [v for k, v in resp.headerlist if k == 'Vary']
    assert 'OpenStack-API-Version' in varies and 'X-OpenStack-Nova-API-Version' in varies
