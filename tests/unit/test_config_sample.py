"""etc/novalite/novalite.conf.sample is up to date with the option definitions.

The sample is regenerated in-process with the same generator config as
tools/generate_config.sh (``tox -e genconfig``) and compared block by block. Only the
blocks novalite owns ("# From novalite" in each section) must match exactly; the
oslo.messaging and oslo.log blocks document whatever library versions were installed
when the sample was last generated, so a library upgrade does not fail this test
(their sections must still be present). Machine-dependent defaults (host,
state_path) never reach the sample: novalite/conf/default.py gives them a
sample_default.
"""

import pathlib
import re

from oslo_config import cfg, generator

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / 'etc' / 'novalite' / 'novalite.conf.sample'
GENERATOR_CONF = ROOT / 'etc' / 'novalite' / 'novalite-config-generator.conf'
FIX = 'stale: run tools/generate_config.sh (or tox -e genconfig) and commit the result'


def _blocks(text):
    """{(section, namespace): lines} of a generated sample."""
    blocks = {}
    section = namespace = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r'\[[^\]]+\]', line):
            section, namespace = line[1:-1], None
            continue
        m = re.fullmatch(r'# From (\S+)', line)
        if m and i > 0 and lines[i - 1] == '#':
            namespace = m.group(1)
            blocks.setdefault((section, namespace), [])
            continue
        if namespace is not None:
            blocks[(section, namespace)].append(line)
    return {key: '\n'.join(value).strip('#\n ') for key, value in blocks.items()}


def _generate(tmp_path):
    out = tmp_path / 'novalite.conf.sample'
    conf = cfg.ConfigOpts()
    generator.register_cli_opts(conf)
    conf(['--config-file', str(GENERATOR_CONF), '--output-file', str(out)],
         project='novalite-config-generator', default_config_files=[],
         default_config_dirs=[])
    generator.generate(conf)
    return out.read_text()


def test_sample_is_current(tmp_path):
    fresh = _blocks(_generate(tmp_path))
    committed = _blocks(SAMPLE.read_text())

    ours = sorted(k for k in fresh if k[1] == 'novalite')
    assert ours, 'the generator found no novalite options'
    assert ours == sorted(k for k in committed if k[1] == 'novalite'), FIX
    for key in ours:
        assert committed[key] == fresh[key], f'[{key[0]}] {FIX}'
    # Library sections are documented, whatever their exact content today.
    assert {k[0] for k in fresh} == {k[0] for k in committed}, FIX


def test_sample_has_no_machine_values():
    text = SAMPLE.read_text()
    assert '#host = <current_hostname>' in text
    assert '#state_path = $HOME/.novalite' in text
    home = str(pathlib.Path.home())
    if home not in ('/', ''):
        assert home not in text
