"""Who is calling: request contexts from noauth2 tokens or keystone headers, and policy."""

import logging
import time

import webob
from oslo_policy import policy as oslo_policy

from novalite import context as nl_context
from novalite import exception, policies
from novalite.api import faults

LOG = logging.getLogger(__name__)

ADMIN_ROLES = ['admin', 'member', 'reader']
USER_ROLES = ['member', 'reader']


def _role_list(raw: str) -> list[str]:
    return [r.strip().lower() for r in raw.split(',') if r.strip()]


def noauth2_challenge(req) -> webob.Response:
    """The reply to a token-less noauth2 request: hand out a usable token."""
    user = req.headers.get('X-Auth-User', 'admin')
    project = req.headers.get('X-Auth-Project-Id', 'admin')
    resp = webob.Response(status=204, content_type='text/plain', charset='UTF-8')
    resp.headers['X-Auth-Token'] = '%s:%s' % (user, project)
    resp.headers['X-Server-Management-Url'] = req.path_url.rstrip('/') + '/' + project
    return resp


def noauth2_context(req, request_id: str) -> nl_context.RequestContext:
    """Token ``user:project[:roles]`` (project defaults to user); user ``admin`` is admin.

    A client-sent X-Roles header is ignored: nothing a client sends makes it an admin
    but the user name ``admin``. The optional third field names extra non-admin roles
    (``alice:demo:manager,member,reader``) for trying role-based rules without Keystone.
    """
    token = req.headers['X-Auth-Token']
    user, _sep, rest = token.partition(':')
    project, _sep, role_field = rest.partition(':')
    project = project or user
    is_admin = user == 'admin'
    roles = list(ADMIN_ROLES if is_admin else USER_ROLES)
    if role_field:
        extra = [r for r in _role_list(role_field) if r != 'admin']
        roles = extra + [r for r in roles if r not in extra] if is_admin else extra
    return nl_context.RequestContext(user_id=user, project_id=project, roles=roles,
                                     is_admin=is_admin,
                                     request_id=request_id,
                                     remote_address=req.remote_addr)


def keystone_context(req, request_id: str) -> nl_context.RequestContext:
    """The context keystonemiddleware.auth_token describes in the WSGI environment.

    oslo.context reads user, project, domain and system scope, roles and names from it;
    the request id stays ours. A missing user is a 401. A token scoped to neither a
    project, a domain nor the system carries no project to filter by: it is refused
    rather than read as "every project".
    """
    if req.headers.get('X-Identity-Status', 'Confirmed') != 'Confirmed':
        raise faults.HTTPError(401, 'The request you have made requires authentication.')
    ctx = nl_context.RequestContext.from_environ(
        req.environ, request_id=request_id, remote_address=req.remote_addr)
    if not ctx.user_id:
        raise faults.HTTPError(401, 'The request you have made requires authentication.')
    ctx.roles = [r.lower() for r in ctx.roles]
    ctx.is_admin = 'admin' in ctx.roles
    if not (ctx.project_id or ctx.system_scope or ctx.domain_id):
        raise faults.HTTPError(403, 'A token scoped to a project is required.')
    return ctx


def wrap_keystone(app, conf):
    """Put keystonemiddleware's auth_token in front of ``app`` (imported only when used)."""
    from keystonemiddleware import auth_token
    return auth_token.AuthProtocol(app, {'oslo_config_config': conf})


class _Enforcer(oslo_policy.Enforcer):
    """oslo.policy's enforcer, looking for policy file changes at most once a second.

    The stock enforcer searches the configuration directories for its files on every
    check; a server view makes several checks, so that search was a large share of a
    GET's time. An edited policy file still takes effect within a second."""

    RELOAD_SECONDS = 1.0
    _loaded_at = None

    def __init__(self, conf):
        super().__init__(conf)
        self.decisions: dict = {}

    def load_rules(self, force_reload=False):
        now = time.monotonic()
        if force_reload or self._loaded_at is None or \
                now - self._loaded_at >= self.RELOAD_SECONDS:
            super().load_rules(force_reload)
            self._loaded_at = now
            self.decisions.clear()


def _decision_key(rule, target, ctx):
    try:
        creds = tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                             for k, v in ctx.to_policy_values().items()))
        key = (rule, tuple(sorted(target.items())), creds)
        hash(key)
    except TypeError:   # something unhashable in the target or credentials: no caching
        return None
    return key


class Authorizer:
    """oslo.policy enforcement with the in-code defaults of novalite.policies."""

    def __init__(self, conf):
        self.enforcer = _Enforcer(conf)
        self.enforcer.register_defaults(policies.list_rules())

    def authorize(self, ctx, rule: str, target: dict | None = None) -> None:
        target = target or {'project_id': ctx.project_id, 'user_id': ctx.user_id}
        # A decision depends only on the rule, the target and the caller's credentials:
        # the same question within one policy load gets the answer it got before.
        self.enforcer.load_rules()
        key = _decision_key(rule, target, ctx)
        allowed = self.enforcer.decisions.get(key) if key is not None else None
        if allowed is None:
            try:
                self.enforcer.authorize(rule, target, ctx, do_raise=True,
                                        exc=exception.PolicyNotAuthorized, action=rule)
                allowed = True
            except (exception.PolicyNotAuthorized, oslo_policy.InvalidScope):
                allowed = False
            if key is not None:
                if len(self.enforcer.decisions) > 10000:
                    self.enforcer.decisions.clear()
                self.enforcer.decisions[key] = allowed
        if not allowed:
            raise exception.PolicyNotAuthorized(action=rule)

    def check(self, ctx, rule: str, target: dict | None = None) -> bool:
        try:
            self.authorize(ctx, rule, target)
        except exception.PolicyNotAuthorized:
            return False
        return True
