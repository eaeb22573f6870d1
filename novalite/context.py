"""The request context that travels with every API request and RPC message."""

import uuid

from oslo_context import context as oslo_context


def generate_request_id() -> str:
    return 'req-' + str(uuid.uuid4())


class RequestContext(oslo_context.RequestContext):
    """Who asks (user, project, roles), on behalf of which request id."""

    def __init__(self, user_id=None, project_id=None, roles=None, is_admin=None,
                 request_id=None, read_deleted='no', remote_address=None, **kwargs):
        kwargs.pop('user', None)
        kwargs.pop('tenant', None)
        kwargs.pop('project', None)
        super().__init__(user_id=user_id, project_id=project_id, roles=roles or [],
                         is_admin=bool(is_admin) if is_admin is not None else False,
                         request_id=request_id or generate_request_id(), **kwargs)
        if is_admin is None:
            self.is_admin = 'admin' in (self.roles or [])
        self.read_deleted = read_deleted
        self.remote_address = remote_address

    def to_dict(self):
        values = super().to_dict()
        values.update(user_id=self.user_id, project_id=self.project_id,
                      read_deleted=self.read_deleted, remote_address=self.remote_address)
        return values

    @classmethod
    def from_dict(cls, values):
        return cls(user_id=values.get('user_id') or values.get('user'),
                   project_id=values.get('project_id') or values.get('tenant'),
                   roles=values.get('roles') or [],
                   is_admin=values.get('is_admin'),
                   request_id=values.get('request_id'),
                   read_deleted=values.get('read_deleted', 'no'),
                   remote_address=values.get('remote_address'),
                   global_request_id=values.get('global_request_id'))

    def elevated(self):
        ctx = self.from_dict(self.to_dict())
        ctx.is_admin = True
        if 'admin' not in ctx.roles:
            ctx.roles = list(ctx.roles) + ['admin']
        return ctx


def get_admin_context(request_id=None) -> RequestContext:
    return RequestContext(user_id=None, project_id=None, roles=['admin'], is_admin=True,
                          request_id=request_id)
