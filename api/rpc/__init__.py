"""The Alibaba Cloud OpenAPI RPC dialect at ``/``: RAM 2015-05-01, STS 2015-04-01, IMS
2019-08-15 (OIDC providers) and ResourceManager 2020-03-31 (Resource Directory).

A thin adapter over the engine /v1 uses — the same ledger commands, ``manage``/
``authorize_read`` authorisation (``ram:<Action>`` on the same ARNs), index queries and
events — so that the Alibaba Cloud SDKs (tea-openapi's RAM/STS clients with V3 or V1
signatures, aliyun-python-sdk-core, alibabacloud-credentials) work unchanged.

Modules, one job each: ``requests`` (read a call), ``params`` (typed parameters), ``registry``
(actions by Action+Version, ``RpcContext``), ``auth`` (signature → caller), ``secrets`` (the
secret-lookup port), ``errors`` (RAM's codes, and the engine's errors mapped to them),
``answers`` (JSON answers and error bodies, ``rpc_time``), ``endpoint`` (the route).

To add an action, in a module named ``ram_<topic>.py`` (or ``sts_``, ``ims_``, ``rm_`` for
STS, IMS, ResourceManager) of this package — the endpoint imports every such module at
start-up::

    from mandate.api.rpc.params import RpcParams, MaxItems
    from mandate.api.rpc.registry import RAM, RpcContext, rpc_action

    class GetUserParams(RpcParams):
        user_name: str  # read from "UserName"; absent -> MissingUserName

    @rpc_action("GetUser", RAM, GetUserParams)
    def get_user(ctx: RpcContext, p: GetUserParams) -> dict[str, Any]:
        ctx.authorize_read("ram:GetUser", user_arn(ctx.account_id, p.user_name))
        ...  # read the index; raise NotFound(..., code="EntityNotExist.User") or RpcError
        return {"User": {...}}  # PascalCase; RequestId is added; times via answers.rpc_time

A write authorises and writes in one step, as /v1 does::

    ctx.manage("ram:CreateUser", user_arn(ctx.account_id, p.user_name)).write(
        lambda ledger: ledger.create_user(ctx.account_id, p.user_name, p.display_name)
    )

Raise domain errors as the engine does (they carry RAM's codes) or ``errors.RpcError(status,
code[, message])`` for a refusal only this dialect makes; never build a response. Every check
must come before the write, so a refused call writes nothing. This package ``__init__``
imports nothing: ``api.runtime`` imports ``secrets`` from it.
"""
