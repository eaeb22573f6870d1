"""etc/novalite/logging.conf.sample works as oslo.log's log_config_append.

Run in a child process: logging configuration is process-global. The sample's
/var/log/novalite is swapped for a temporary directory.
"""

import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / 'etc' / 'novalite' / 'logging.conf.sample'

CHILD = textwrap.dedent('''
    import logging, sys
    from oslo_config import cfg
    from oslo_log import log
    conf = cfg.ConfigOpts()
    log.register_options(conf)
    conf(['--log-config-append', sys.argv[1]], project='novalite',
         default_config_files=[], default_config_dirs=[])
    log.setup(conf, 'novalite')
    log.getLogger('novalite.conductor.manager').info('hello from novalite')
    log.getLogger('novalite.conductor.manager').debug('debug is off by default')
    log.getLogger('kombu.connection').info('library chatter is quiet')
    log.getLogger('novalite-conductor').warning('program logger reaches the root')
''')


def test_sample_configures_console_and_file(tmp_path):
    conf = tmp_path / 'logging.conf'
    text = SAMPLE.read_text()
    assert "'/var/log/novalite'" in text
    conf.write_text(text.replace("'/var/log/novalite'", repr(str(tmp_path))))
    script = tmp_path / 'novalite-conductor'
    script.write_text(CHILD)
    out = subprocess.run([sys.executable, str(script), str(conf)], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    logfile = tmp_path / 'novalite-conductor.log'  # named after the program
    assert logfile.exists(), list(tmp_path.iterdir())
    for stream in (out.stderr, logfile.read_text()):
        assert 'INFO novalite.conductor.manager [-] hello from novalite' in stream
        assert 'program logger reaches the root' in stream
        assert 'debug is off' not in stream
        assert 'library chatter' not in stream
