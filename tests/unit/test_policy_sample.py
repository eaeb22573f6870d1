"""etc/novalite/policy.yaml.sample is up to date with novalite.policies.

The sample is regenerated in-process with the same generator config as
tools/generate_policy.sh, through the ``oslo.policy.policies`` entry point
``novalite`` (so the entry point itself is tested too), and compared as a whole:
unlike the config sample, it contains nothing from other libraries.
"""

import pathlib

import yaml
from oslo_config import cfg
from oslo_policy import generator

from novalite import policies

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / 'etc' / 'novalite' / 'policy.yaml.sample'
GENERATOR_CONF = ROOT / 'etc' / 'novalite' / 'novalite-policy-generator.conf'
FIX = 'stale: run tools/generate_policy.sh and commit etc/novalite/policy.yaml.sample'


def _generate(tmp_path):
    out = tmp_path / 'policy.yaml.sample'
    generator.generate_sample(args=['--config-file', str(GENERATOR_CONF),
                                    '--output-file', str(out)],
                              conf=cfg.ConfigOpts())
    return out.read_text()


def test_sample_is_current(tmp_path):
    assert SAMPLE.read_text() == _generate(tmp_path), FIX


def test_sample_documents_every_rule():
    # Every rule is there, commented out, so an empty override file changes nothing.
    text = SAMPLE.read_text()
    for rule in policies.list_rules():
        assert f'#"{rule.name}": "{rule.check_str}"' in text, rule.name
    uncommented = '\n'.join(line[1:] for line in text.splitlines()
                            if line.startswith('#"'))
    assert set(yaml.safe_load(uncommented)) == {r.name for r in policies.list_rules()}
