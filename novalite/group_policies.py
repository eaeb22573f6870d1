"""Server group policy names and rules, shared by the API, the scheduler and the claim
(no imports: compute hosts load the scheduler's records without the database layer)."""

AFFINITY = 'affinity'
ANTI_AFFINITY = 'anti-affinity'
SOFT_AFFINITY = 'soft-affinity'
SOFT_ANTI_AFFINITY = 'soft-anti-affinity'
POLICIES = (ANTI_AFFINITY, AFFINITY, SOFT_ANTI_AFFINITY, SOFT_AFFINITY)
# Filters and the claim enforce these; the soft ones only weigh hosts.
HARD_POLICIES = (AFFINITY, ANTI_AFFINITY)


def max_per_host(rules: dict | None) -> int:
    """Members an anti-affinity group allows on one host (rule max_server_per_host)."""
    return int((rules or {}).get('max_server_per_host') or 1)
