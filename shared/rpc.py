"""nameko RPC between Sanji services, with the caller checked.

Only the services named in ``shared.bus.RPC_CALLERS`` may call a method. The caller is the AMQP
``user_id`` of the request, which RabbitMQ refuses unless it is the publishing connection's own user, so
it cannot be forged the way a header or nameko's context data could. The broker's permissions already
keep everyone else off the RPC exchange (docs/security.md); this check is the second line.
"""

from __future__ import annotations

from kombu import Exchange
from nameko.exceptions import RemoteError
from nameko.rpc import MethodProxy, ServiceProxy, get_rpc_exchange

from shared import bus
from shared.broker_faults import ResilientReplyListener, ResilientRpcConsumer, Rpc, RpcProxy


def _passive_rpc_exchange(config) -> Exchange:
    """nameko's RPC exchange, bound to without declaring it: a service's broker user may not configure it
    (it is declared with the topology, shared/topology.py)."""
    exchange = get_rpc_exchange(config)
    return Exchange(exchange.name, type=exchange.type, durable=exchange.durable, passive=True)


class _PassiveRpcConsumer(ResilientRpcConsumer):
    def setup(self):
        super().setup()
        self.queue.exchange = _passive_rpc_exchange(self.container.config)


class _PassiveReplyListener(ResilientReplyListener):
    def setup(self):
        super().setup()
        self.queue.exchange = _passive_rpc_exchange(self.container.config)


class CallerRefused(Exception):
    """The caller of an RPC is not one of the services allowed to call it."""


class GuardedRpc(Rpc):
    """``@rpc`` (broker-fault resilient, shared.broker_faults), answering only the callers allowed to call this
    method (a refusal is a RemoteError)."""

    rpc_consumer = _PassiveRpcConsumer()

    def setup(self):
        super().setup()
        from shared.nameko_ext import bus_users

        self.bus_users = bus_users(self.container.config)
        self.qualified_name = f"{self.container.service_name}.{self.method_name}"

    def handle_message(self, body, message):
        caller = message.properties.get("user_id")
        refusal = bus.rpc_caller_refusal(caller, self.qualified_name, self.bus_users)
        if refusal is not None:
            # Raised here, nameko's RpcConsumer answers the caller with the error and acks the request.
            raise CallerRefused(f"{self.qualified_name}: {refusal} ({caller or 'no user_id'})")
        super().handle_message(body, message)


guarded_rpc = GuardedRpc.decorator


class _SignedMethodProxy(MethodProxy):
    def __init__(self, worker_ctx, service_name, method_name, reply_listener, **options):
        config = worker_ctx.container.config
        options.setdefault("user_id", bus.user_of_uri(config["AMQP_URI"]))
        super().__init__(worker_ctx, service_name, method_name, reply_listener, **options)


class _SignedServiceProxy(ServiceProxy):
    def __getattr__(self, name):
        return _SignedMethodProxy(self.worker_ctx, self.service_name, name, self.reply_listener, **self.options)


class ServiceRpcProxy(RpcProxy):
    """The resilient ``RpcProxy`` (shared.broker_faults) whose requests carry the caller's broker user as
    ``user_id``."""

    rpc_reply_listener = _PassiveReplyListener()

    def get_dependency(self, worker_ctx):
        return _SignedServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener, **self.options)


__all__ = ["CallerRefused", "GuardedRpc", "RemoteError", "ServiceRpcProxy", "guarded_rpc"]
