#!/usr/bin/env bash
# Regenerate etc/novalite/novalite.conf.sample from the option definitions
# (novalite.conf.* plus the oslo.messaging and oslo.log options novalite uses).
# tests/unit/test_config_sample.py fails while the committed sample is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
exec oslo-config-generator --config-file etc/novalite/novalite-config-generator.conf "$@"
