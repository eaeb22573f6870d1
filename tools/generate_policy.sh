#!/usr/bin/env bash
# Regenerate etc/novalite/policy.yaml.sample from the in-code policy defaults
# (novalite.policies, entry point oslo.policy.policies = novalite).
# tests/unit/test_policy_sample.py fails while the committed sample is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
exec oslopolicy-sample-generator --config-file etc/novalite/novalite-policy-generator.conf "$@"
